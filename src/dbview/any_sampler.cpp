// Owns the adapters from the concrete samplers to AnySampler.
#include "dbview/any_sampler.h"

#include "dbview/mysql_sampler.h"
#include "dbview/pg_sampler.h"

namespace poolguard::dbview {

namespace {

template <typename Concrete>
class Adapter final : public AnySampler {
  public:
    explicit Adapter(std::string dsn) : sampler_(std::move(dsn)) {}
    Result<Snapshot> sample() override { return sampler_.sample(); }
    Status cancel_backend(int64_t id) override { return sampler_.cancel_backend(id); }
    Status terminate_backend(int64_t id) override { return sampler_.terminate_backend(id); }
    std::optional<int64_t> own_pid() const override { return sampler_.own_pid(); }

  private:
    Concrete sampler_;
};

}  // namespace

Result<std::unique_ptr<AnySampler>> open_sampler(const Dsn& dsn) {
    if (dsn.engine == Engine::mysql) return std::make_unique<Adapter<MysqlSampler>>(dsn.original);
    return std::make_unique<Adapter<PgSampler>>(dsn.libpq_conninfo());
}

}  // namespace poolguard::dbview
