// Thin RAII over the SQLite C API for the local broker: one connection (`Db`) and
// its prepared statements (`Stmt`). Every return code is checked and turned into
// an `Error` that names the database file and SQLite's own message.
//
// Threads: a Db and its Stmts belong to one thread at a time (the connection is
// opened SQLITE_OPEN_NOMUTEX); whoever shares one across threads guards it with a
// mutex of its own. Several Db on the same file (threads or processes) are fine:
// WAL lets readers run beside the one writer, busy_timeout waits for the lock.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>

#include "core/result.h"

struct sqlite3;
struct sqlite3_stmt;

namespace sluice::local {

class Db;

// One prepared statement, reset before each use. Move-only.
class Stmt {
 public:
  Stmt() = default;
  Stmt(Db* db, sqlite3_stmt* s) : db_(db), s_(s) {}
  Stmt(Stmt&& o) noexcept : db_(o.db_), s_(o.s_) { o.s_ = nullptr; }
  Stmt& operator=(Stmt&& o) noexcept;
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;
  ~Stmt();

  // Clears bindings and any previous step; call before binding a new use.
  Stmt& reset();
  // Binders take 1-based indexes. Text and blobs are not copied: the caller keeps
  // them alive until the statement is reset.
  Result<void> bind(int i, int64_t v);
  Result<void> bind_text(int i, std::string_view v);
  Result<void> bind_blob(int i, std::string_view v);

  // Advances: true = a row is ready, false = done. Errors leave the statement reset.
  Result<bool> step();
  // Runs a statement that returns no rows (or ignores them).
  Result<void> run();

  // Steps through every row of (partition, value) integer pairs, collecting them, and
  // resets the statement.
  Result<std::map<int32_t, int64_t>> partition_values();

  bool is_null(int col) const;
  int64_t int64(int col) const;
  std::string_view blob(int col) const;  // valid until the next step/reset

 private:
  Db* db_ = nullptr;
  sqlite3_stmt* s_ = nullptr;
};

struct DbOptions {
  std::chrono::milliseconds busy_timeout{5000};
  bool create = true;  // create the file (and its parent directories) when missing
};

// One connection in WAL mode with synchronous=FULL and the local broker's schema.
class Db {
 public:
  // Opens (and creates when asked) `path`; sets the pragmas and creates the tables.
  static Result<std::unique_ptr<Db>> open(const std::string& path, const DbOptions& opt);
  ~Db();
  Db(const Db&) = delete;
  Db& operator=(const Db&) = delete;

  const std::string& path() const { return path_; }
  sqlite3* handle() const { return db_; }

  Result<Stmt> prepare(std::string_view sql);
  Result<void> prepare_into(Stmt& out, std::string_view sql);  // for member statements
  Result<void> exec(const char* sql);
  Result<int64_t> query_int(const char* sql);  // first column of the first row
  int64_t changes() const;

  // The Error for SQLite result code `rc` while doing `what` (with path and errmsg).
  Error error(int rc, std::string_view what) const;

 private:
  explicit Db(std::string path) : path_(std::move(path)) {}
  static Result<void> create_fresh(const std::string& path, const DbOptions& opt);
  Result<void> connect(const DbOptions& opt, bool create);
  Result<void> configure();  // pragmas and schema

  std::string path_;
  sqlite3* db_ = nullptr;
};

// Maps a SQLite result code to our error vocabulary (busy/locked -> unavailable,
// retriable; full, or an I/O error whose errno `sys_errno` is ENOSPC/EDQUOT ->
// no_space, retriable; corrupt/notadb -> corrupt; everything else -> io).
Errc errc_for_sqlite(int rc, int sys_errno = 0) noexcept;
// Whether an error of that code is worth retrying as is.
inline bool retriable(Errc c) noexcept { return c == Errc::unavailable || c == Errc::no_space; }

}  // namespace sluice::local
