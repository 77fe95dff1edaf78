// Owns AnySampler: one interface over PgSampler and MysqlSampler, chosen by the DSN's scheme, so the CLI and
// the control plane write each tool once for both engines.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string_view>

#include "common/error.h"
#include "dbview/dsn.h"
#include "dbview/snapshot.h"

namespace poolguard::dbview {

class AnySampler {
  public:
    virtual ~AnySampler() = default;
    virtual Result<Snapshot> sample() = 0;
    virtual Status cancel_backend(int64_t id) = 0;     // PostgreSQL pg_cancel_backend / MySQL KILL QUERY
    virtual Status terminate_backend(int64_t id) = 0;  // PostgreSQL pg_terminate_backend / MySQL KILL
    virtual std::optional<int64_t> own_pid() const = 0;
};

// Parses the DSN (an Error for a bad one) and returns the matching sampler; nothing is connected yet.
Result<std::unique_ptr<AnySampler>> open_sampler(const Dsn& dsn);

}  // namespace poolguard::dbview
