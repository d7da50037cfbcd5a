#include "scaling/autoscaler.h"

#include <tuple>

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <set>

namespace sluice::scaling {

Result<ScalerConfig> ScalerConfig::from(const WorkersConfig& w, uint32_t concurrency,
                                        const std::optional<RateLimitConfig>& rate) {
  ScalerConfig c;
  c.min = w.min;
  c.max = w.max == 0 ? concurrency : w.max;
  c.target_lag = w.target_lag;
  c.idle_after = w.idle_after;
  if (rate && !rate->by_key) {
    c.rate_per_second = rate->per_second;
    c.rate_burst = rate->burst;
  }
  if (auto r = c.check(); !r) return r.error();
  return c;
}

Result<void> ScalerConfig::check() const {
  auto bad = [](std::string m) { return Error{Errc::invalid_argument, std::move(m)}; };
  if (target_lag == 0) return bad("workers.target_lag: must be at least 1 (messages per worker)");
  if (max == 0) return bad("workers.max: must be at least 1 (0 means concurrency, which is 0)");
  if (min > max)
    return bad(fmt::format("workers.min: {} is above workers.max {}", min, max));
  if (idle_after.count() < 0) return bad("workers.idle_after: must not be negative");
  if (smoothing_window.count() <= 0) return bad("smoothing_window: must be positive");
  if (scale_down_window.count() < 0) return bad("scale_down_window: must not be negative");
  if (stuck_samples == 0) return bad("stuck_samples: must be at least 1");
  if (!(scale_up_tolerance >= 0 && scale_up_tolerance < 1))
    return bad("scale_up_tolerance: must be in [0, 1)");
  if (rate_per_second && !(*rate_per_second > 0 && std::isfinite(*rate_per_second)))
    return bad("rate_limit.per_second: must be positive");
  if (rate_per_second && rate_burst == 0) return bad("rate_limit.burst: must be at least 1");
  return ok();
}

SourceReading reading_of(const Result<std::vector<PartitionLag>>& lag, Ordering ordering) {
  SourceReading r;
  r.ordering = ordering;
  if (lag) {
    r.ok = true;
    r.partitions = lag.value();
  } else {
    r.error = lag.error().message;
  }
  return r;
}

uint32_t rate_ceiling(double per_second, uint32_t burst, std::optional<double> mean_seconds,
                      uint32_t min, uint32_t max) {
  // The epsilon keeps a product that is whole in decimal (0.1 x 30) from rounding up.
  const double busy = mean_seconds ? std::ceil(per_second * std::max(*mean_seconds, 0.0) - 1e-9) + 1
                                   : static_cast<double>(burst);
  const uint32_t n = busy >= 0 && busy < static_cast<double>(max) ? static_cast<uint32_t>(busy) : max;
  return std::clamp(n, std::min(min, max), max);
}

std::string Decision::why() const {
  std::string s = fmt::format("desired {} (lag {}", desired, lag);
  if (lag_seconds) s += fmt::format(" / {:.1f}s", *lag_seconds);
  s += fmt::format(", smoothed {:.0f} -> {}", smoothed_lag, raw);
  if (kept_for_load) s += fmt::format("; kept for the load: {:.1f} running on average", smoothed_busy);
  if (held_unknown) s += "; held: lag unknown" + (unknown.empty() ? "" : " (" + unknown + ")");
  if (activated) s += "; activated from zero";
  if (scaled_to_zero) s += "; idle: scaled to zero";
  if (stabilising) s += "; scale-down stabilising";
  if (capped_by_partitions) s += "; capped by ordered partitions with lag";
  if (capped_by_max) s += "; capped at max";
  if (capped_by_rate && rate_ceiling) {
    s += fmt::format("; capped by rate_limit at {}", *rate_ceiling);
    s += mean_invocation_seconds ? fmt::format(" ({:.3f}s per invocation)", *mean_invocation_seconds)
                                 : std::string(" (burst: no invocation timed yet)");
  }
  if (raised_to_min) s += "; raised to min";
  for (const auto& p : stuck)
    s += fmt::format("; stuck {}/{}[{}] group {} at offset {} ({} samples)", p.broker, p.topic,
                     p.partition, p.group, p.committed, p.samples);
  return s + ")";
}

double RateMeter::update(uint64_t total) {
  SteadyTime now = clock_.now();
  double rate = 0;
  if (last_at_ && now > *last_at_ && total >= last_total_)
    rate = static_cast<double>(total - last_total_) /
           std::chrono::duration<double>(now - *last_at_).count();
  last_at_ = now;
  last_total_ = total;
  return rate;
}

Autoscaler::Autoscaler(ScalerConfig cfg, const Clock& clock)
    : cfg_(cfg), clock_(clock), desired_(cfg.min) {}

std::pair<double, double> Autoscaler::smooth(SteadyTime now, double lag, double busy) {
  samples_.push_back({now, lag, busy});
  while (!samples_.empty() && samples_.front().at <= now - cfg_.smoothing_window)
    samples_.pop_front();
  double sum = 0, busy_sum = 0;
  for (const auto& s : samples_) {
    sum += s.lag;
    busy_sum += s.busy;
  }
  const double n = static_cast<double>(samples_.size());
  return {sum / n, busy_sum / n};
}

uint32_t Autoscaler::stabilised(SteadyTime now, uint32_t rec, bool& stabilising) {
  recommendations_.push_back({now, rec});
  while (!recommendations_.empty() &&
         recommendations_.front().at < now - cfg_.scale_down_window)
    recommendations_.pop_front();
  uint32_t highest = rec;
  for (const auto& r : recommendations_) highest = std::max(highest, r.workers);
  // Never above what we have now on account of the window: the window only slows a
  // scale-down, it does not scale up again on an old recommendation.
  uint32_t held = std::min(highest, std::max(desired_, rec));
  stabilising = held > rec;
  return held;
}

std::optional<double> Autoscaler::mean_duration(SteadyTime now, const Observation& obs) {
  if (obs.invocations > 0)
    durations_.push_back({now, obs.invocations, std::max(obs.invocation_seconds, 0.0)});
  while (!durations_.empty() && durations_.front().at <= now - cfg_.smoothing_window)
    durations_.pop_front();
  if (durations_.empty()) return last_mean_;
  uint64_t n = 0;
  double seconds = 0;
  for (const auto& x : durations_) {
    n += x.invocations;
    seconds += x.seconds;
  }
  last_mean_ = seconds / static_cast<double>(n);
  return last_mean_;
}

void Autoscaler::record_direction(uint32_t next) {
  if (next == desired_) return;
  int dir = next > desired_ ? 1 : -1;
  if (last_direction_ != 0 && dir != last_direction_) ++direction_changes_;
  last_direction_ = dir;
}

Decision Autoscaler::tick(const Observation& obs) {
  const SteadyTime now = clock_.now();
  Decision d;
  if (cfg_.rate_per_second) {
    d.mean_invocation_seconds = mean_duration(now, obs);
    d.rate_ceiling = rate_ceiling(*cfg_.rate_per_second, cfg_.rate_burst,
                                  d.mean_invocation_seconds, cfg_.min, cfg_.max);
  }
  bool unknown = false;
  double effective = 0;          // lag with each stuck partition counted as one worker
  uint32_t ordered_with_lag = 0;
  bool uncapped = false;         // a key/none subscription has lag
  uint32_t ordered_total = 0;    // every ordered lane, with lag or not (caps the busy term)
  bool any_unordered = false;    // a none (or key without key_lanes) subscription exists
  std::set<std::string> seen;

  for (const auto& src : obs.sources) {
    if (!src.ok) {
      unknown = true;
      if (d.unknown.empty()) d.unknown = src.error.empty() ? "lag unavailable" : src.error;
      continue;
    }
    for (const auto& p : src.partitions) {
      if (p.lag < 0) {
        unknown = true;
        if (d.unknown.empty())
          d.unknown = fmt::format("lag of {}/{}[{}] unknown", p.broker, p.topic, p.partition);
        continue;
      }
      std::string key = fmt::format("{}/{}/{}/{}", p.broker, p.topic, p.partition, p.group);
      seen.insert(key);
      auto [it, fresh] = progress_.try_emplace(key, Progress{p.committed, 0});
      Progress& pr = it->second;
      if (p.lag > 0 && obs.workers > 0 && !fresh && pr.committed == p.committed)
        ++pr.still;
      else
        pr.still = 0;
      pr.committed = p.committed;

      double lag = static_cast<double>(p.lag);
      if (pr.still >= cfg_.stuck_samples) {
        d.stuck.push_back({p.broker, p.topic, p.group, p.partition, p.committed, p.lag, pr.still});
        lag = std::min(lag, static_cast<double>(cfg_.target_lag));  // at most one worker
      }
      d.lag += p.lag;
      effective += lag;
      if (p.lag_seconds) d.lag_seconds = std::max(d.lag_seconds.value_or(0.0), *p.lag_seconds);
      if (p.lag > 0) {
        if (src.ordering == Ordering::partition)
          ++ordered_with_lag;
        else if (src.ordering == Ordering::none || !src.key_lanes)
          uncapped = true;
      }
    }
    if (src.ordering == Ordering::key && src.key_lanes) ordered_with_lag += *src.key_lanes;
    if (src.ordering == Ordering::partition)
      ordered_total += static_cast<uint32_t>(src.partitions.size());
    else if (src.ordering == Ordering::key && src.key_lanes)
      ordered_total += *src.key_lanes;
    else
      any_unordered = true;
  }
  if (!unknown) std::erase_if(progress_, [&](const auto& kv) { return !seen.contains(kv.first); });
  if (obs.throughput > 0) d.drain_seconds = static_cast<double>(d.lag) / obs.throughput;

  // Events that finished since the last tick count too: at zero the dispatcher runs an
  // arriving event at once, and a quick one is done before the tick sees it in flight.
  const bool pending = d.lag > 0 || obs.inflight > 0 || obs.throughput > 0;
  const bool idle = !unknown && !pending;
  if (!idle)
    idle_since_.reset();
  else if (!idle_since_)
    idle_since_ = now;

  const double target = static_cast<double>(cfg_.target_lag);
  auto per_target = [&](double lag) {
    return static_cast<uint32_t>(std::min<double>(std::ceil(lag / target),
                                                  std::numeric_limits<uint32_t>::max()));
  };
  auto cap = [&](uint32_t n) {
    if (!uncapped && n > ordered_with_lag) {
      d.capped_by_partitions = d.lag > 0;  // with no lag at all there is nothing to cap
      n = ordered_with_lag;
    }
    if (n > cfg_.max) {
      d.capped_by_max = true;
      n = cfg_.max;
    }
    return n;
  };
  const bool from_zero = desired_ == 0 && pending;

  uint32_t next = 0;
  if (unknown) {
    // Hold: never scale in on a reading we do not have. The known part of the lag is
    // a lower bound of the real lag, so it may still scale out.
    d.held_unknown = true;
    d.smoothed_lag = effective;
    d.raw = per_target(effective);
    next = std::max({desired_, cap(d.raw), cfg_.min});
    if (from_zero && next == 0) next = 1;
    d.activated = from_zero && next > 0;
    // The held size counts as a recommendation, so when readings come back low the
    // scale-down still waits out its window.
    bool ignored = false;
    next = stabilised(now, next, ignored);
  } else {
    std::tie(d.smoothed_lag, d.smoothed_busy) = smooth(now, effective, obs.busy);
    const uint32_t for_lag = per_target(d.smoothed_lag);
    uint32_t raw = for_lag;
    if (raw > desired_ && desired_ > 0 &&
        d.smoothed_lag <= static_cast<double>(desired_) * target * (1 + cfg_.scale_up_tolerance))
      raw = desired_;  // within tolerance of the current capacity: not worth a change
    // Enough workers for the load arriving now (rule 4's second term), never more
    // than the ordered lanes can feed when every subscription is ordered.
    const double keep = d.smoothed_busy * (1 + cfg_.busy_headroom);
    uint32_t for_load = static_cast<uint32_t>(
        std::min<double>(std::ceil(keep - 1e-9), std::numeric_limits<uint32_t>::max()));
    if (!any_unordered) for_load = std::min(for_load, ordered_total);
    for_load = std::min(for_load, cfg_.max);
    if (for_load > desired_ && desired_ > 0 &&
        static_cast<double>(for_load) <= desired_ * (1 + cfg_.scale_up_tolerance))
      for_load = desired_;  // the headroom covers it: not worth a change
    d.raw = std::max(for_lag, for_load);
    raw = cap(raw);  // the lag term's caps (rule 5)
    if (for_load > raw) {
      raw = for_load;
      d.kept_for_load = true;
    }
    if (from_zero) {
      // Activation: size on the instantaneous lag, the window still holds the zeros.
      raw = std::max({raw, cap(per_target(effective)), 1u});
      d.activated = true;
    }

    uint32_t floor = cfg_.min;
    bool to_zero = false;
    if (cfg_.min == 0 && desired_ > 0) {
      to_zero = idle_since_ && now - *idle_since_ >= cfg_.idle_after;
      floor = to_zero ? 0 : 1;
    }
    if (pending) floor = std::max(floor, 1u);
    floor = std::min(floor, cfg_.max);
    if (raw < floor) {
      d.raised_to_min = cfg_.min > 0 && floor == cfg_.min;
      raw = floor;
    }
    if (to_zero) {
      // idle_after is the stabilisation of scale-to-zero; do not add the window to it.
      recommendations_.clear();
      samples_.clear();
      d.scaled_to_zero = desired_ > 0;
      next = 0;
    } else {
      next = stabilised(now, raw, d.stabilising);
    }
  }
  if (d.rate_ceiling && next > *d.rate_ceiling) {
    // Rule 8 last, over every path above (a held, stabilised or activated size too):
    // workers beyond what the tokens keep busy would only wait for tokens.
    d.capped_by_rate = true;
    next = *d.rate_ceiling;
  }
  record_direction(next);
  desired_ = next;
  d.desired = next;
  return d;
}

}  // namespace sluice::scaling
