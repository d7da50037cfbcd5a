#include "broker-adapters/local/sqlite_db.h"

#include "core/clock.h"

#include <fcntl.h>
#include <sqlite3.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <thread>
#include <system_error>

namespace sluice::local {

namespace {

// The on-disk schema (README.md). Every table is made IF NOT EXISTS at each open, so
// a file written by an older sluice gains the tables it lacks (`handouts`,
// `deliveries`: delivery_count.h) and keeps everything it had.
// Offsets are per (topic, partition), from 0.
// `heads` keeps the next offset to write, so trimming or removing the newest rows
// never lets an offset be handed out twice. `messages` is a rowid table with a
// unique index rather than WITHOUT ROWID: rows of ~1 KB and more would spill into
// overflow pages there, which makes appends of such rows several times slower
// (BENCHMARKS.md, "Figures behind code choices").
constexpr const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS topics(
  name TEXT PRIMARY KEY NOT NULL,
  partitions INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS heads(
  topic TEXT NOT NULL, "partition" INTEGER NOT NULL, next_offset INTEGER NOT NULL,
  PRIMARY KEY(topic, "partition")) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS messages(
  seq INTEGER PRIMARY KEY,
  topic TEXT NOT NULL, "partition" INTEGER NOT NULL, "offset" INTEGER NOT NULL,
  ts_ms INTEGER NOT NULL, key BLOB, body BLOB NOT NULL);
CREATE UNIQUE INDEX IF NOT EXISTS messages_position ON messages(topic, "partition", "offset");
CREATE TABLE IF NOT EXISTS offsets(
  grp TEXT NOT NULL, topic TEXT NOT NULL, "partition" INTEGER NOT NULL,
  next_offset INTEGER NOT NULL,
  PRIMARY KEY(grp, topic, "partition")) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS consumers(
  grp TEXT NOT NULL, topic TEXT NOT NULL, PRIMARY KEY(grp, topic)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS space_probe(id INTEGER PRIMARY KEY, pad BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS handouts(
  grp TEXT NOT NULL, topic TEXT NOT NULL, "partition" INTEGER NOT NULL,
  end_offset INTEGER NOT NULL,
  PRIMARY KEY(grp, topic, "partition")) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS deliveries(
  grp TEXT NOT NULL, topic TEXT NOT NULL, "partition" INTEGER NOT NULL,
  "offset" INTEGER NOT NULL, count INTEGER NOT NULL,
  PRIMARY KEY(grp, topic, "partition", "offset")) WITHOUT ROWID;
)sql";

}  // namespace

Errc errc_for_sqlite(int rc, int sys_errno) noexcept {
  switch (rc & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED: return Errc::unavailable;
    case SQLITE_FULL: return Errc::no_space;  // ENOSPC on a write, or max_page_count
    case SQLITE_IOERR:
      return sys_errno == ENOSPC || sys_errno == EDQUOT ? Errc::no_space : Errc::io;
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB: return Errc::corrupt;
    default: return Errc::io;
  }
}

// ---- Stmt

Stmt& Stmt::operator=(Stmt&& o) noexcept {
  if (this != &o) {
    if (s_) sqlite3_finalize(s_);
    db_ = o.db_;
    s_ = o.s_;
    o.s_ = nullptr;
  }
  return *this;
}

Stmt::~Stmt() {
  if (s_) sqlite3_finalize(s_);
}

Stmt& Stmt::reset() {
  // The return code of reset repeats the last step's error, already reported.
  sqlite3_reset(s_);
  sqlite3_clear_bindings(s_);
  return *this;
}

Result<void> Stmt::bind(int i, int64_t v) {
  int rc = sqlite3_bind_int64(s_, i, v);
  if (rc != SQLITE_OK) return db_->error(rc, "bind");
  return ok();
}

Result<void> Stmt::bind_text(int i, std::string_view v) {
  // SQLITE_STATIC: callers keep the text alive until the statement is reset.
  int rc = sqlite3_bind_text(s_, i, v.data(), static_cast<int>(v.size()), SQLITE_STATIC);
  if (rc != SQLITE_OK) return db_->error(rc, "bind");
  return ok();
}

Result<void> Stmt::bind_blob(int i, std::string_view v) {
  // A null pointer would bind NULL; an empty blob stays an empty blob.
  const char* p = v.data() ? v.data() : "";
  int rc = sqlite3_bind_blob(s_, i, p, static_cast<int>(v.size()), SQLITE_STATIC);
  if (rc != SQLITE_OK) return db_->error(rc, "bind");
  return ok();
}

Result<bool> Stmt::step() {
  int rc = sqlite3_step(s_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  Error e = db_->error(rc, sqlite3_sql(s_) ? sqlite3_sql(s_) : "step");
  sqlite3_reset(s_);
  return e;
}

Result<void> Stmt::run() {
  SLUICE_TRY(step());
  return ok();
}

bool Stmt::is_null(int col) const { return sqlite3_column_type(s_, col) == SQLITE_NULL; }

int64_t Stmt::int64(int col) const { return sqlite3_column_int64(s_, col); }

Result<std::map<int32_t, int64_t>> Stmt::partition_values() {
  std::map<int32_t, int64_t> out;
  for (;;) {
    SLUICE_TRY(row, step());
    if (!row) break;
    out[static_cast<int32_t>(int64(0))] = int64(1);
  }
  reset();
  return out;
}

std::string_view Stmt::blob(int col) const {
  const void* p = sqlite3_column_blob(s_, col);
  int n = sqlite3_column_bytes(s_, col);
  if (!p || n <= 0) return {};
  return {static_cast<const char*>(p), static_cast<size_t>(n)};
}

// ---- Db

Result<std::unique_ptr<Db>> Db::open(const std::string& path, const DbOptions& opt) {
  if (path.empty())
    return Error{Errc::invalid_argument, "local broker: the database path is empty"};
  std::error_code ec;
  if (opt.create && !std::filesystem::exists(path, ec)) {
    std::filesystem::path parent = std::filesystem::path(path).parent_path();
    ec.clear();
    if (!parent.empty()) std::filesystem::create_directories(parent, ec);
    if (ec)
      return Error{Errc::io, "local broker " + path + ": cannot create directory " +
                                 parent.string() + ": " + ec.message()};
    SLUICE_TRY(create_fresh(path, opt));
  }
  std::unique_ptr<Db> db(new Db(path));
  SLUICE_TRY(db->connect(opt, opt.create));
  return db;
}

Result<void> Db::create_fresh(const std::string& path, const DbOptions& opt) {
  // Two processes creating the same file race on the switch to WAL mode (SQLite
  // then fails with SQLITE_BUSY or an I/O error instead of waiting). So a new file
  // is built under a private name and linked into place; link() fails with EEXIST
  // for the loser, which then just opens the winner's file.
  static std::atomic<uint64_t> seq{0};
  const std::string tmp =
      path + ".new-" + std::to_string(::getpid()) + "-" + std::to_string(seq.fetch_add(1));
  auto cleanup = [&] {
    for (const char* suffix : {"", "-wal", "-shm", "-journal"}) ::unlink((tmp + suffix).c_str());
  };
  {
    Db fresh(tmp);
    if (auto r = fresh.connect(opt, true); !r) {
      cleanup();
      return Error{r.error().code, "local broker " + path + ": cannot create: " +
                                       r.error().message, r.error().retriable};
    }
  }  // closed: the WAL is checkpointed into the file and removed
  const int rc = ::link(tmp.c_str(), path.c_str());
  const int err = errno;
  cleanup();
  if (rc != 0 && err != EEXIST && err != EPERM && err != ENOTSUP && err != EXDEV)
    return Error{Errc::io, "local broker " + path + ": cannot create: " + std::strerror(err)};
  // EPERM/ENOTSUP: no hard links on this filesystem; connect() creates it in place.
  if (rc == 0) {
    // Make the new name itself durable, not only the file's contents.
    std::string dir = std::filesystem::path(path).parent_path().string();
    const int fd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
      (void)::fsync(fd);
      ::close(fd);
    }
  }
  return ok();
}

Result<void> Db::connect(const DbOptions& opt, bool create) {
  int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX;
  if (create) flags |= SQLITE_OPEN_CREATE;
  int rc = sqlite3_open_v2(path_.c_str(), &db_, flags, nullptr);
  if (rc != SQLITE_OK) {
    Error e{errc_for_sqlite(rc), "local broker " + path_ + ": cannot open: " +
                                     (db_ ? sqlite3_errmsg(db_) : sqlite3_errstr(rc))};
    sqlite3_close(db_);
    db_ = nullptr;
    return e;
  }
  sqlite3_extended_result_codes(db_, 1);
  rc = sqlite3_busy_timeout(db_, static_cast<int>(opt.busy_timeout.count()));
  if (rc != SQLITE_OK) return error(rc, "busy_timeout");
  // Some of these return SQLITE_BUSY without calling the busy handler when another
  // connection is setting up the same file: retry them for up to busy_timeout.
  const auto deadline = deadline_in(opt.busy_timeout);
  for (;;) {
    auto r = configure();
    if (r || r.error().code != Errc::unavailable ||
        std::chrono::steady_clock::now() >= deadline)
      return r;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

Result<void> Db::configure() {
  SLUICE_TRY(mode, prepare("PRAGMA journal_mode=WAL"));
  SLUICE_TRY(row, mode.step());
  std::string got = row ? std::string(mode.blob(0)) : std::string();
  mode.reset();
  if (got != "wal")
    return Error{Errc::io, "local broker " + path_ + ": cannot switch to WAL mode (got '" +
                               got + "')"};
  SLUICE_TRY(exec("PRAGMA synchronous=FULL"));
  // Keep a checkpointed WAL from staying large on disk.
  SLUICE_TRY(exec("PRAGMA journal_size_limit=67108864"));
  SLUICE_TRY(exec(kSchema));
  return ok();
}

Db::~Db() {
  // Owners finalize their statements first; close_v2 defers the close until the
  // last statement is gone if one is not.
  if (db_) sqlite3_close_v2(db_);
}

Result<Stmt> Db::prepare(std::string_view sql) {
  sqlite3_stmt* s = nullptr;
  int rc = sqlite3_prepare_v3(db_, sql.data(), static_cast<int>(sql.size()),
                              SQLITE_PREPARE_PERSISTENT, &s, nullptr);
  if (rc != SQLITE_OK) return error(rc, "prepare " + std::string(sql));
  return Stmt(this, s);
}

Result<void> Db::prepare_into(Stmt& out, std::string_view sql) {
  SLUICE_TRY(s, prepare(sql));
  out = std::move(s);
  return ok();
}

Result<void> Db::exec(const char* sql) {
  char* msg = nullptr;
  int rc = sqlite3_exec(db_, sql, nullptr, nullptr, &msg);
  if (rc != SQLITE_OK) {
    std::string text = msg ? msg : sqlite3_errstr(rc);
    sqlite3_free(msg);
    const Errc c = errc_for_sqlite(rc, sqlite3_system_errno(db_));
    return Error{c, "local broker " + path_ + ": " + text, retriable(c)};
  }
  return ok();
}

Result<int64_t> Db::query_int(const char* sql) {
  SLUICE_TRY(s, prepare(sql));
  SLUICE_TRY(row, s.step());
  return row ? s.int64(0) : 0;
}

int64_t Db::changes() const { return sqlite3_changes64(db_); }

Error Db::error(int rc, std::string_view what) const {
  const Errc c = errc_for_sqlite(rc, db_ ? sqlite3_system_errno(db_) : 0);
  std::string msg = "local broker " + path_ + ": " + std::string(what) + ": " +
                    (db_ ? sqlite3_errmsg(db_) : sqlite3_errstr(rc)) + " (sqlite " +
                    std::to_string(rc) + ")";
  return Error{c, std::move(msg), retriable(c)};
}

}  // namespace sluice::local
