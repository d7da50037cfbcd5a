// bench_cesql: the cost of one CESQL filter evaluation per event, beside the same test
// written by hand in C++ (the floor any evaluator can reach), in the same run.
//
//   bench_cesql [--count N] [--rounds R]
//
// The expression is a typical one: three comparisons and one LIKE,
//   type LIKE 'com.example.%' AND source = '/orders' AND int(priority) > 3 AND subject != 'test'
// over four events in turn (one passes, the others fail at the LIKE, at the source and at
// the cast comparison), read through filter::SubscriptionFilter::matches() as the
// dispatcher does. Prints per round and the median ns per event of each, and
// `RESULT cesql base_ns sluice_ns ratio` (sluice / hand-written: lower is better).
#include <algorithm>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "filter/cesql.h"
#include "filter/subscription_filter.h"

namespace {

using sluice::Event;
using namespace sluice::filter;

constexpr const char* kExpression =
    "type LIKE 'com.example.%' AND source = '/orders' AND int(priority) > 3 AND "
    "subject != 'test'";

std::vector<Event> events() {
  auto make = [](const char* type, const char* source, const char* priority) {
    Event e;
    e.id = "0f8e2a4c-5d1b-4c3e-9a7f-2b6d8e1c3a5f";
    e.source = source;
    e.type = type;
    e.subject = "order/42";
    e.time = "2026-12-06T12:00:00Z";
    e.extensions = {{"tenant", "acme"}, {"priority", priority}, {"region", "eu-west"}};
    return e;
  };
  return {make("com.example.order.created", "/orders", "5"),
          make("org.other.order.created", "/orders", "5"),
          make("com.example.order.created", "/payments", "5"),
          make("com.example.order.created", "/orders", "2")};
}

// The same test by hand: what the expression costs without an evaluator.
__attribute__((noinline)) bool by_hand(const Event& e) {
  if (!std::string_view(e.type).starts_with("com.example.")) return false;
  if (e.source != "/orders") return false;
  const std::string* p = nullptr;
  for (const auto& [k, v] : e.extensions)
    if (k == "priority") p = &v;
  if (!p) return false;
  int prio = 0;
  auto [end, ec] = std::from_chars(p->data(), p->data() + p->size(), prio);
  if (ec != std::errc() || end != p->data() + p->size() || prio <= 3) return false;
  return e.subject.empty() || e.subject != "test";
}

template <class F>
double ns_per_event(const std::vector<Event>& evs, long count, F&& f, long& passed) {
  passed = 0;
  const auto t0 = std::chrono::steady_clock::now();
  for (long i = 0; i < count; ++i) passed += f(evs[static_cast<size_t>(i) & 3]);
  const auto t1 = std::chrono::steady_clock::now();
  return std::chrono::duration<double, std::nano>(t1 - t0).count() / static_cast<double>(count);
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  long count = 2'000'000;
  int rounds = 5;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--count")) count = std::atol(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--rounds")) rounds = std::atoi(argv[i + 1]);
  }
  auto compiled = compile(kExpression);
  if (!compiled) {
    std::fprintf(stderr, "bench_cesql: %s\n", compiled.error().message.c_str());
    return 1;
  }
  const SubscriptionFilter filter = SubscriptionFilter::sql(compiled.value());
  const std::vector<Event> evs = events();
  std::printf("# expression: %s\n# %ld evaluations per round, %d rounds, 4 events in turn\n",
              kExpression, count, rounds);
  std::vector<double> base, sluice, ratios;
  for (int r = 0; r < rounds; ++r) {
    long pb = 0, ps = 0;
    const double b = ns_per_event(evs, count, by_hand, pb);
    const double s = ns_per_event(
        evs, count, [&](const Event& e) { return filter.matches(EventView(e)); }, ps);
    if (pb != ps || pb != count / 4) {
      std::fprintf(stderr, "bench_cesql: passed %ld (by hand) vs %ld (CESQL), want %ld\n", pb, ps,
                   count / 4);
      return 1;
    }
    std::printf("round %d: by hand %.1f ns/event, CESQL %.1f ns/event, ratio %.2f\n", r, b, s,
                s / b);
    base.push_back(b);
    sluice.push_back(s);
    ratios.push_back(s / b);
  }
  std::printf("RESULT cesql base_ns=%.1f sluice_ns=%.1f ratio=%.2f\n", median(base),
              median(sluice), median(ratios));
  return 0;
}
