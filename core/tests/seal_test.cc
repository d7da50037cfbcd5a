#include "core/seal.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

namespace sluice::seal::testing {
namespace {

Event callback_event() {
  Event e;
  e.id = "evt-1";
  e.data = "payload";
  e.set_header("sluice-callback-url", "https://example.com/cb");
  e.set_header("sluice-callback-function", "fn");
  return e;
}

Event retry_event() {
  Event e;
  e.id = "evt-2";
  e.data = "retry me";
  e.set_header("sluice-retry-attempt", "1");
  e.set_header("sluice-retry-due", "1700000000000");
  e.set_header("sluice-retry-first-failure", "1699999999000");
  e.set_header("sluice-retry-origin", "local/in/0/7");
  return e;
}

Event dead_letter() {
  Event e;
  e.id = "evt-3";
  e.data = "dead";
  e.set_header("sluice-dlq-function", "fn");
  e.set_header("sluice-dlq-error-class", "error");
  e.set_header("sluice-dlq-attempts", "3");
  return e;
}

TEST(Seal, RoundTripEveryKind) {
  const Keyring k = Keyring::random();
  for (auto [kind, ev] : {std::pair{Kind::callback, callback_event()},
                          std::pair{Kind::retry, retry_event()},
                          std::pair{Kind::dead_letter, dead_letter()}}) {
    k.apply(kind, ev, "fn");
    ASSERT_NE(ev.header(seal_header(kind)), nullptr);
    EXPECT_EQ(k.verify(kind, ev, "fn"), Verdict::verified) << to_string(kind);
  }
}

TEST(Seal, TamperedValueIsAMismatch) {
  const Keyring k = Keyring::random();
  Event ev = retry_event();
  k.apply(Kind::retry, ev, "fn");
  ev.set_header("sluice-retry-due", "32503680000000");  // year 3000
  EXPECT_EQ(k.verify(Kind::retry, ev, "fn"), Verdict::mismatch);
}

TEST(Seal, RemovedOrAddedCoveredHeaderIsAMismatch) {
  const Keyring k = Keyring::random();
  Event ev = dead_letter();
  k.apply(Kind::dead_letter, ev, "fn");
  Event added = ev;
  added.set_header("sluice-dlq-original-topic", "elsewhere");
  EXPECT_EQ(k.verify(Kind::dead_letter, added, "fn"), Verdict::mismatch);
  Event removed = ev;
  std::erase_if(removed.headers, [](const Header& h) { return h.name == "sluice-dlq-attempts"; });
  EXPECT_EQ(k.verify(Kind::dead_letter, removed, "fn"), Verdict::mismatch);
}

TEST(Seal, RepeatedCoveredHeaderIsNeverVerified) {
  const Keyring k = Keyring::random();
  Event ev = callback_event();
  k.apply(Kind::callback, ev, "fn");
  ev.headers.push_back({"Sluice-Callback-Url", "http://169.254.169.254/"});
  EXPECT_EQ(k.verify(Kind::callback, ev, "fn"), Verdict::malformed);
}

TEST(Seal, AnotherKeyIsNotVerified) {
  const Keyring a = Keyring::random();
  const Keyring b = Keyring::random();
  Event ev = callback_event();
  a.apply(Kind::callback, ev, "fn");
  EXPECT_EQ(b.verify(Kind::callback, ev, "fn"), Verdict::other_key);
}

TEST(Seal, SealCopiedToAnotherRecordIsNotVerified) {
  const Keyring k = Keyring::random();
  Event genuine = callback_event();
  k.apply(Kind::callback, genuine, "fn");
  const std::string seal = *genuine.header(seal_header(Kind::callback));

  Event other_id = callback_event();
  other_id.id = "evt-forged";
  other_id.set_header(std::string(seal_header(Kind::callback)), seal);
  EXPECT_EQ(k.verify(Kind::callback, other_id, "fn"), Verdict::mismatch);

  Event other_payload = callback_event();
  other_payload.data = "something else";
  other_payload.set_header(std::string(seal_header(Kind::callback)), seal);
  EXPECT_EQ(k.verify(Kind::callback, other_payload, "fn"), Verdict::mismatch);

  // The same record steering another function, or read as another kind.
  EXPECT_EQ(k.verify(Kind::callback, genuine, "other"), Verdict::mismatch);
  Event as_retry = retry_event();
  as_retry.id = genuine.id;
  as_retry.data = genuine.data;
  as_retry.set_header(std::string(seal_header(Kind::retry)), seal);
  EXPECT_EQ(k.verify(Kind::retry, as_retry, "fn"), Verdict::mismatch);
}

TEST(Seal, DeadLetterSealBindsTheOriginalIdNotTheStoredOne) {
  const Keyring k = Keyring::random();
  Event ev = dead_letter();
  k.apply(Kind::dead_letter, ev, "fn");
  ASSERT_NE(ev.header("sluice-dlq-event-id"), nullptr);
  EXPECT_EQ(*ev.header("sluice-dlq-event-id"), "evt-3");
  ev.id = "f.dlq/0/12";  // a plain Kafka record read back gets its id from its coordinates
  EXPECT_EQ(k.verify(Kind::dead_letter, ev, "fn"), Verdict::verified);
  ev.set_header("sluice-dlq-event-id", "evt-other");
  EXPECT_EQ(k.verify(Kind::dead_letter, ev, "fn"), Verdict::mismatch);
}

// NATS trims header values and a transport may drop an empty header: neither breaks
// a seal (neither changes what sluice reads).
TEST(Seal, SurvivesTrimmedValuesAndDroppedEmptyHeaders) {
  const Keyring k = Keyring::random();
  Event ev = dead_letter();
  ev.set_header("sluice-dlq-error-message", "");
  ev.set_header("sluice-dlq-error-class", " error ");
  k.apply(Kind::dead_letter, ev, "fn");
  Event carried = ev;
  std::erase_if(carried.headers,
                [](const Header& h) { return h.name == "sluice-dlq-error-message"; });
  carried.set_header("SLUICE-DLQ-ERROR-CLASS", "error");
  EXPECT_EQ(k.verify(Kind::dead_letter, carried, "fn"), Verdict::verified);
  carried.set_header("sluice-dlq-error-message", "now says something");
  EXPECT_EQ(k.verify(Kind::dead_letter, carried, "fn"), Verdict::mismatch);
}

TEST(Seal, MissingAndMalformedSeals) {
  const Keyring k = Keyring::random();
  Event ev = callback_event();
  EXPECT_EQ(k.verify(Kind::callback, ev, "fn"), Verdict::missing);
  for (const char* bad : {"", "v1", "v2:00000000:" "00", "v1:zzzzzzzz:x",
                          "v1:00000000:zz00000000000000000000000000000000000000000000000000000000000000"}) {
    ev.set_header(std::string(seal_header(Kind::callback)), bad);
    const Verdict v = k.verify(Kind::callback, ev, "fn");
    EXPECT_TRUE(v == Verdict::malformed || v == Verdict::other_key) << bad;
  }
}

TEST(Seal, StripRemovesTheKindAndItsSealOnly) {
  const Keyring k = Keyring::random();
  Event ev = callback_event();
  ev.set_header("sluice-retry-due", "1");
  ev.set_header("x-other", "kept");
  k.apply(Kind::callback, ev, "fn");
  ASSERT_TRUE(has_any(Kind::callback, ev));
  strip(Kind::callback, ev);
  EXPECT_FALSE(has_any(Kind::callback, ev));
  EXPECT_NE(ev.header("sluice-retry-due"), nullptr);
  EXPECT_NE(ev.header("x-other"), nullptr);
}

TEST(Keyring, EveryKeyVerifiesTheFirstSeals) {
  const std::string old_key(32, 'a'), new_key(32, 'b');
  auto before = Keyring::from_keys({old_key});
  auto during = Keyring::from_keys({new_key, old_key});
  auto after = Keyring::from_keys({new_key});
  ASSERT_TRUE(before && during && after);
  Event ev = retry_event();
  before.value().apply(Kind::retry, ev, "fn");
  EXPECT_EQ(during.value().verify(Kind::retry, ev, "fn"), Verdict::verified);
  EXPECT_EQ(after.value().verify(Kind::retry, ev, "fn"), Verdict::other_key);
  Event fresh = retry_event();
  during.value().apply(Kind::retry, fresh, "fn");
  EXPECT_EQ(after.value().verify(Kind::retry, fresh, "fn"), Verdict::verified);
}

TEST(Keyring, FileTextAndBounds) {
  const std::string hex64(64, 'a');
  auto ok = Keyring::parse_file_text("# comment\n\n  " + hex64 + "  \n" + std::string(64, '1') + "\n");
  ASSERT_TRUE(ok) << ok.error().message;
  EXPECT_FALSE(Keyring::parse_file_text(""));
  EXPECT_FALSE(Keyring::parse_file_text("abcd\n"));            // too short
  EXPECT_FALSE(Keyring::parse_file_text(std::string(64, 'g')));  // not hex
  EXPECT_FALSE(Keyring::from_keys(std::vector<std::string>(17, std::string(32, 'k'))));
}

TEST(Keyring, LoadCreatesAPrivateKeyFileOnceAndReadsItBack) {
  namespace fs = std::filesystem;
  const fs::path dir = fs::temp_directory_path() / ("sluice-seal-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  const std::string path = (dir / "sub" / "control.key").string();
  EXPECT_EQ(Keyring::load(path, false).error().code, Errc::not_found);
  auto a = Keyring::load(path, true);
  ASSERT_TRUE(a) << a.error().message;
  struct stat st {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  auto b = Keyring::load(path, true);  // exists: read, not replaced
  ASSERT_TRUE(b);
  EXPECT_EQ(a.value().key_id(), b.value().key_id());
  Event ev = callback_event();
  a.value().apply(Kind::callback, ev, "fn");
  EXPECT_EQ(b.value().verify(Kind::callback, ev, "fn"), Verdict::verified);
  // Nothing but the key file is left behind.
  size_t n = 0;
  for ([[maybe_unused]] auto& e : fs::directory_iterator(dir / "sub")) ++n;
  EXPECT_EQ(n, 1u);
  fs::remove_all(dir);
}

}  // namespace
}  // namespace sluice::seal::testing
