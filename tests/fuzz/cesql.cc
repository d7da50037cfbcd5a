// CloudEvents SQL expressions (filter::compile, Expression::evaluate): any text either
// compiles or is refused with a message and a column inside the input (or just past its
// end); a compiled expression evaluates against a fixed event to a value of one of the
// three types, never to a parse error, and the same way twice (evaluation is pure).
#include "filter/cesql.h"
#include "tests/fuzz/fuzz_input.h"

using namespace sluice;

namespace {

const Event& fixed_event() {
  static const Event e = [] {
    Event x;
    x.id = "id-1";
    x.source = "/fuzz";
    x.type = "com.example.fuzz";
    x.subject = "s\xc3\xa9";  // two-byte character
    x.extensions = {{"n", "42"}, {"b", "true"}, {"neg", "-2147483648"}, {"bad", "\xff\xfe"}};
    return x;
  }();
  return e;
}

bool same(const filter::Evaluation& a, const filter::Evaluation& b) {
  return a.error == b.error && a.result == b.result;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text = fuzz::as_text(data, size);
  auto compiled = filter::compile(text);
  if (!compiled) {
    const auto& e = compiled.error();
    SLUICE_FUZZ_CHECK(!e.message.empty());
    const size_t last = std::max(text.size(), filter::kMaxExpressionBytes) + 1;
    SLUICE_FUZZ_CHECK(e.column >= 1 && e.column <= last);
    return 0;
  }
  SLUICE_FUZZ_CHECK(text.size() <= filter::kMaxExpressionBytes);
  const filter::EventView view(fixed_event());
  const filter::Evaluation first = compiled.value().evaluate(view);
  SLUICE_FUZZ_CHECK(first.error != filter::ErrorKind::parse);
  const filter::Evaluation second = compiled.value().evaluate(view);
  SLUICE_FUZZ_CHECK(same(first, second));
  SLUICE_FUZZ_CHECK(compiled.value().matches(view) ==
                    (!first.error && first.result.type() == filter::Type::boolean &&
                     first.result.as_bool()));
  return 0;
}
