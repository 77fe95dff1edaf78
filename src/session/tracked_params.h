// Owns TrackedParams: the session parameters poolguard keeps per client and re-applies on whichever server
// the client gets. Stored inline (one short string per parameter, a presence bit each) so that a client costs
// no map nodes: an idle client's memory is mostly this kind of per-session state.
#pragma once

#include <array>
#include <cstdint>
#include <iterator>
#include <string>
#include <string_view>

#include "config/tracked_parameters.h"

namespace poolguard::session {

// Every parameter poolguard can track (config/tracked_parameters.h); which ones it does track for a client
// depends on track_extra_parameters (config::tracks_parameter), checked where values enter TrackedParams.
using TrackedParam = config::TrackableParameter;
inline constexpr const auto& kTrackedParams = config::kTrackableParameters;
inline constexpr size_t kTrackedCount = config::kTrackableCount;

// Index into kTrackedParams of a lowercase parameter name, or -1 when it is not tracked.
inline int tracked_index(std::string_view lower) {
    for (size_t i = 0; i < kTrackedCount; ++i)
        if (lower == kTrackedParams[i].lower) return static_cast<int>(i);
    return -1;
}

class TrackedParams {
  public:
    // The client's value of a tracked parameter (lowercase name), or nullptr when it has none.
    const std::string* find(std::string_view lower) const {
        const int i = tracked_index(lower);
        return i < 0 ? nullptr : at(static_cast<size_t>(i));
    }
    // By index into kTrackedParams.
    const std::string* at(size_t i) const { return (present_ >> i & 1u) != 0 ? &values_[i] : nullptr; }
    // Sets a tracked parameter; names that are not tracked are ignored.
    void set(std::string_view lower, std::string_view value) {
        const int i = tracked_index(lower);
        if (i < 0) return;
        values_[static_cast<size_t>(i)].assign(value);
        present_ = static_cast<uint8_t>(present_ | (1u << i));
    }

  private:
    std::array<std::string, kTrackedCount> values_;
    uint8_t present_ = 0;
    static_assert(kTrackedCount <= 8, "present_ has one bit per tracked parameter");
};

}  // namespace poolguard::session
