// Owns the control plane (issue 5): it watches the proxy and the databases from its own threads and never
// blocks the io thread. A publisher on the io thread copies what it needs out of the proxy every second;
// one sampler thread per database instance polls pg_stat_activity on its own connection; the evaluator
// thread feeds the detectors every second, journals their state changes and hands firing ones to the
// Alertmanager pusher; the HTTP endpoint serves /metrics, /healthz, /api/v1/status and /api/v1/incidents.
#pragma once

#include <asio.hpp>

#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/error.h"
#include "config/config.h"
#include "control/state.h"

namespace poolguard::session {
class Proxy;
}

namespace poolguard::control {

// Takes one sample of a database; made once per sampler thread from a libpq conninfo.
using SampleFn = std::function<Result<dbview::Snapshot>()>;
using SamplerFactory = std::function<SampleFn(const std::string& conninfo)>;

// One database instance to sample.
struct SampleTarget {
    std::string name;      // the first [databases] entry that points at it
    std::string target;    // host:port/dbname for people
    std::string conninfo;  // libpq conninfo of the control connection
    std::string host;      // as in the [databases] entry (empty = unix_socket_dir/default socket)
    int port = 5432;
};

// The instances behind the [databases] entries (one per host:port), with the control connection's
// credentials: control_user (else the entry's forced user, else the first admin user, else "postgres"),
// control_password (else the entry's password for that user, else its plain-text auth_file secret).
std::vector<SampleTarget> sample_targets(
    const config::Config& cfg,
    const std::function<std::optional<std::string>(const std::string&)>& secret_for);

class ControlPlane {
  public:
    ControlPlane(asio::io_context& io, session::Proxy& proxy, std::shared_ptr<const config::Config> config,
                 SamplerFactory sampler_factory = {});
    ~ControlPlane();

    // Whether the configuration asks for anything (http_listen, journal_file or alertmanager_url).
    static bool wanted(const config::Config& cfg);
    // Opens the journal and binds the HTTP port (errors: refuse to start), then starts the threads and
    // the publisher. Call on the io thread before io.run().
    Status start();
    // Stops and joins every thread. Call after io.run() returned.
    void stop();

    ControlStatus status() const;

  private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace poolguard::control
