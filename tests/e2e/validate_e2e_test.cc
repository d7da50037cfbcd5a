// End-to-end: `validate` refuses what `run` refuses at start (token files, programs,
// libraries, the topology plan: retry.mode topic on core NATS, a stream name JetStream
// refuses), with exit 2 and file:line; and it says
// in one line what it could not check.
#include <gtest/gtest.h>

#include "harness.h"

namespace sluice::e2e {
namespace {

TEST(Validate, RefusesWhatRunRefusesAndSaysWhatItCouldNotCheck) {
  TempDir dir;
  const std::string bad =
      "http: { listen: 127.0.0.1:0, auth: { bearer_tokens_file: ./missing-tokens } }\n"
      "functions:\n"
      "  - name: f\n"
      "    command: [no-such-program-xyz]\n"
      "    subscribe: [{ topic: t }]\n";
  dir.write("bad.yaml", bad);
  auto v = run_cli({"validate", "-c", dir.file("bad.yaml")});
  EXPECT_EQ(v.exit_code, 2) << v.out << v.err;
  EXPECT_NE(v.err.find("http.auth.bearer_tokens_file"), std::string::npos) << v.err;
  EXPECT_NE(v.err.find(dir.file("bad.yaml") + ":3: functions[0].command[0]: cannot start "
                                              "'no-such-program-xyz'"),
            std::string::npos)
      << v.err;
  auto r = run_cli({"run", "-c", dir.file("bad.yaml")});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("no-such-program-xyz"), std::string::npos) << r.err;

  dir.write("nats.yaml",
            "brokers:\n  n: { kind: nats }\nfunctions:\n  - name: f\n    command: [cat]\n"
            "    subscribe: [{ topic: t }]\n    retry: { mode: topic }\n");
  auto n = run_cli({"validate", "-c", dir.file("nats.yaml")});
  EXPECT_EQ(n.exit_code, 2);
  EXPECT_NE(n.err.find("needs JetStream"), std::string::npos) << n.err;

  // A stream name JetStream refuses: `run` refused it only once connected to a server
  // (EndToEndNats.BadConfigsExitTwoWithAClearError), while `validate` passed it.
  dir.write("stream.yaml",
            "brokers:\n  n: { kind: nats, jetstream: { stream: A.B, subjects: [\"t\", \"f.dlq\"] } }\n"
            "functions:\n  - { name: f, command: [cat], subscribe: [{ topic: t }] }\n");
  auto st = run_cli({"validate", "-c", dir.file("stream.yaml")});
  EXPECT_EQ(st.exit_code, 2) << st.out;
  EXPECT_NE(st.err.find(dir.file("stream.yaml") +
                        ":2: brokers.n.jetstream.stream: nats broker 'n': stream 'A.B': not a "
                        "valid stream name"),
            std::string::npos)
      << st.err;

  dir.write("tokens", "s3cret\n");
  dir.write("good.yaml",
            "http: { listen: 127.0.0.1:0, auth: { bearer_tokens_file: ./tokens } }\n"
            "functions:\n  - { name: f, command: [cat], subscribe: [{ topic: t }] }\n");
  auto ok = run_cli({"validate", "-c", dir.file("good.yaml")});
  EXPECT_EQ(ok.exit_code, 0) << ok.err;
  EXPECT_NE(ok.out.find("not checked (known only at run): http.listen 127.0.0.1:0 free"),
            std::string::npos)
      << ok.out;
}

}  // namespace
}  // namespace sluice::e2e
