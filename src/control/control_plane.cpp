// Owns the control plane's threads and their wiring (see control_plane.h): publisher (io thread),
// samplers, evaluator, HTTP endpoint, Alertmanager pusher.
#include "control/control_plane.h"

#include <httplib.h>
#include <openssl/crypto.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <set>

#include "control/alerts.h"
#include "control/journal.h"
#include "control/metrics.h"
#include "control/status_json.h"
#include "dbview/pg_sampler.h"
#include "detect/errors.h"
#include "detect/exhaustion.h"
#include "detect/leak.h"
#include "detect/queue.h"
#include "detect/spike.h"
#include "detect/utilization.h"
#include "pool/pool.h"
#include "pool/server_connection.h"
#include "respond/guard.h"
#include "respond/proxy_actions.h"
#include "respond/runner.h"
#include "session/client_session.h"
#include "session/proxy.h"

namespace poolguard::control {

namespace {

using Clock = std::chrono::steady_clock;

double seconds(config::Micros m) {
    return static_cast<double>(m.count()) / 1e6;
}

std::string conninfo_value(const std::string& v) {
    std::string out = "'";
    for (char c : v) {
        if (c == '\\' || c == '\'') out += '\\';
        out += c;
    }
    return out + "'";
}

// "Bearer <token>" with the configured token, compared in constant time.
bool bearer_token_matches(const std::string& header, const std::string& token) {
    constexpr std::string_view kScheme = "Bearer ";
    if (header.size() != kScheme.size() + token.size() || !header.starts_with(kScheme)) return false;
    return CRYPTO_memcmp(header.data() + kScheme.size(), token.data(), token.size()) == 0;
}

// A plain-text auth_file secret (not an md5 hash or a SCRAM verifier), usable as a libpq password.
bool plain_secret(const std::string& s) {
    if (s.starts_with("SCRAM-SHA-256$")) return false;
    if (s.size() == 35 && s.starts_with("md5")) return false;
    return true;
}

// The queue in front of each database's pools (all its users together), per priority class.
std::map<std::string, detect::QueueSample> queue_samples(const ProxySnapshot& p) {
    std::map<std::string, detect::QueueSample> out;
    for (const auto& pool : p.pools) {
        auto& q = out[pool.database];
        q.t = p.t;
        q.waiting += pool.cl_waiting;
        q.longest_s = std::max(q.longest_s, static_cast<double>(pool.maxwait_us) / 1e6);
    }
    for (const auto& k : p.classes) {
        auto& q = out[k.database];
        q.t = p.t;
        auto it =
            std::find_if(q.classes.begin(), q.classes.end(), [&](const auto& c) { return c.name == k.name; });
        if (it == q.classes.end()) it = q.classes.insert(q.classes.end(), {k.name, 0, 0});
        it->waiting += k.cl_waiting;
        it->longest_s = std::max(it->longest_s, static_cast<double>(k.maxwait_us) / 1e6);
    }
    return out;
}

}  // namespace

std::vector<SampleTarget> sample_targets(
    const config::Config& cfg,
    const std::function<std::optional<std::string>(const std::string&)>& secret_for) {
    std::vector<SampleTarget> out;
    std::set<std::string> seen;
    for (const auto& db : cfg.databases) {
        if (db.name == "*") continue;
        const std::string host = db.host.empty() ? cfg.unix_socket_dir : db.host;
        const std::string instance = host + ":" + std::to_string(db.port);
        if (!seen.insert(instance).second) continue;
        std::string user = cfg.control_user;
        if (user.empty()) user = db.user;
        if (user.empty() && !cfg.admin_users.empty()) user = cfg.admin_users.front();
        if (user.empty()) user = "postgres";
        std::string password = cfg.control_password;
        if (password.empty() && user == db.user) password = db.password;
        if (password.empty() && secret_for) {
            if (auto s = secret_for(user); s && plain_secret(*s)) password = *s;
        }
        const std::string dbname = db.dbname.empty() ? db.name : db.dbname;
        std::string ci = fmt::format(
            "host={} port={} dbname={} user={} "
            "connect_timeout=5",
            conninfo_value(host), db.port, conninfo_value(dbname), conninfo_value(user));
        if (!password.empty()) ci += " password=" + conninfo_value(password);
        out.push_back(SampleTarget{db.name, instance + "/" + dbname, std::move(ci), host, db.port});
    }
    return out;
}

struct ControlPlane::Impl {
    asio::io_context& io;
    session::Proxy& proxy;
    std::shared_ptr<const config::Config> cfg;
    SamplerFactory factory;
    const Clock::time_point epoch = Clock::now();

    mutable std::mutex mutex;  // guards status and stop
    std::condition_variable cv;
    bool stopping = false;
    ControlStatus status;
    std::vector<SampleTarget> targets;

    std::unique_ptr<asio::steady_timer> publish_timer;
    std::shared_ptr<bool> publisher_alive = std::make_shared<bool>(true);
    std::vector<std::thread> threads;
    Journal journal;
    std::unique_ptr<AlertPusher> pusher;
    std::unique_ptr<httplib::Server> http;
    std::thread http_thread;

    // Evaluator state (evaluator thread only).
    struct DbDetectors {
        std::unique_ptr<detect::UtilizationDetector> utilization;
        std::unique_ptr<detect::SpikeDetector> spike;
        std::unique_ptr<detect::ExhaustionDetector> exhaustion;
        double fed_t = -1;
        std::vector<detect::Finding> last;
    };
    std::vector<DbDetectors> db_detectors;
    std::map<std::string, std::unique_ptr<detect::LeakDetector>> leak_detectors;
    std::map<std::string, std::unique_ptr<detect::QueueDetector>> queue_detectors;
    std::map<std::string, detect::Finding> last_queue;
    std::unique_ptr<detect::ErrorDetector> errors;
    std::unique_ptr<detect::ClientLeakDetector> client_leaks;
    std::map<std::string, detect::Finding> previous;  // kind|subject -> last finding
    double last_proxy_t = -1;

    Impl(asio::io_context& io_, session::Proxy& p, std::shared_ptr<const config::Config> c, SamplerFactory f)
        : io(io_), proxy(p), cfg(std::move(c)), factory(std::move(f)) {}

    double now_s() const { return std::chrono::duration<double>(Clock::now() - epoch).count(); }

    // ---- publisher: io thread ----
    void publish() {
        ProxySnapshot snap;
        snap.valid = true;
        snap.t = now_s();
        auto& admin = proxy.admin_backend();
        snap.pools = admin.pools();
        snap.stats = admin.stats_totals();
        snap.classes = admin.classes();
        snap.breakers = admin.breakers();
        snap.adaptive = admin.adaptive();
        snap.clients = static_cast<int>(proxy.client_count());
        const auto now = Clock::now();
        for (const auto& [pid, c] : proxy.clients()) {
            const auto& server = c->server();
            if (!server) continue;
            detect::ClientHold h;
            h.client_id = c->id();
            h.database = c->database();
            h.user = c->user();
            h.application = c->application_name();
            h.address = c->peer();
            h.port = c->peer_port();
            h.backend_pid = server->backend_pid();
            h.idle_in_transaction = server->tx_status() != 'I' && !server->busy_for_client();
            h.idle_s = std::chrono::duration<double>(now - server->ready_since()).count();
            h.xact_s = std::chrono::duration<double>(now - c->bound_at()).count();
            h.last_statement = c->last_statement();
            snap.holds.push_back(std::move(h));
        }
        snap.counters = CounterValues::read(dataplane_counters());
        snap.servers = respond::collect_pooled_servers(proxy);
        std::lock_guard lock(mutex);
        status.proxy = std::move(snap);
    }

    void schedule_publish() {
        publish_timer->expires_after(std::chrono::seconds(1));
        publish_timer->async_wait([this, alive = publisher_alive](std::error_code ec) {
            if (ec || !*alive) return;
            publish();
            schedule_publish();
        });
    }

    // ---- sampler: one thread per instance ----
    void sampler_loop(size_t index) {
        const SampleTarget target = targets[index];
        SampleFn sample = factory(target.conninfo);
        const auto interval = std::chrono::duration_cast<Clock::duration>(cfg->sample_interval);
        bool warned = false;
        std::unique_lock lock(mutex);
        while (!stopping) {
            lock.unlock();
            auto next = Clock::now() + interval;
            auto result = sample();
            lock.lock();
            auto& view = status.databases[index];
            view.sampled_t = now_s();
            if (result) {
                view.snapshot = std::move(*result);
                view.error.clear();
                warned = false;
            } else {
                view.error = result.error().message;
                if (!warned)
                    spdlog::warn("control plane: sampling {} failed: {}", target.target,
                                 result.error().message);
                warned = true;
            }
            cv.notify_all();
            cv.wait_until(lock, next, [&] { return stopping; });
        }
    }

    // ---- evaluator ----
    void evaluator_loop() {
        std::unique_lock lock(mutex);
        while (!stopping) {
            cv.wait_for(lock, std::chrono::seconds(1), [&] { return stopping; });
            if (stopping) break;
            ProxySnapshot proxy_snap = status.proxy;
            std::vector<std::pair<double, std::optional<dbview::Snapshot>>> views;
            for (const auto& v : status.databases)
                views.emplace_back(v.sampled_t, v.error.empty() ? v.snapshot : std::nullopt);
            lock.unlock();
            auto findings = evaluate(proxy_snap, views);
            respond_pass(proxy_snap, views);
            post_budgets(proxy_snap, views);
            journal_adaptive(proxy_snap);
            publish_guard_rows(findings);
            if (pusher) pusher->update(findings);
            lock.lock();
            status.findings = std::move(findings);
        }
    }

    std::vector<detect::Finding> evaluate(
        const ProxySnapshot& p,
        const std::vector<std::pair<double, std::optional<dbview::Snapshot>>>& views) {
        std::vector<detect::Finding> all;
        for (size_t i = 0; i < views.size() && i < db_detectors.size(); ++i) {
            auto& d = db_detectors[i];
            const auto& [t, snap] = views[i];
            if (snap && t > d.fed_t) {
                d.fed_t = t;
                detect::DbSample s{t, snap->used(), snap->usable(), group_sessions(*snap)};
                d.last = {d.utilization->update(s), d.spike->update(s), d.exhaustion->update(s)};
            }
            all.insert(all.end(), d.last.begin(), d.last.end());
        }
        if (p.valid) {
            if (p.t > last_proxy_t) {
                last_proxy_t = p.t;
                std::map<std::string, detect::PoolerSample> per_db;
                for (const auto& st : p.stats) {
                    auto& s = per_db[st.database];
                    s.t = p.t;
                    s.xact_count = st.xact_count;
                    s.xact_time_us = st.xact_time_us;
                }
                for (const auto& h : p.holds) {
                    auto& s = per_db[h.database];
                    s.t = p.t;
                    ++s.held;
                    if (h.idle_in_transaction) {
                        ++s.idle_in_transaction.by_application[h.application];
                        ++s.idle_in_transaction.by_user[h.user];
                        ++s.idle_in_transaction.by_address[h.address];
                    }
                }
                for (auto& [db, s] : per_db) {
                    auto& det = leak_detectors[db];
                    if (!det)
                        det = std::make_unique<detect::LeakDetector>(
                            db,
                            detect::LeakDetector::Settings{seconds(cfg->spike_window), cfg->leak_min_excess,
                                                           seconds(cfg->utilization_min_duration)});
                    last_leak[db] = det->update(s);
                }
                for (auto& [db, q] : queue_samples(p)) {
                    auto& det = queue_detectors[db];
                    if (!det)
                        det = std::make_unique<detect::QueueDetector>(
                            db, detect::QueueDetector::Settings{seconds(cfg->queue_wait_threshold),
                                                                seconds(cfg->query_wait_timeout)});
                    last_queue[db] = det->update(q);
                }
                detect::ErrorSample e{
                    p.t, p.counters.server_too_many_clients,
                    p.counters.refused_max_client_conn + p.counters.refused_query_wait_timeout,
                    p.counters.client_login_failures};
                last_errors = errors->update(e);
                last_client_leaks = client_leaks->update(p.holds);
            }
            for (const auto& [db, f] : last_leak)
                all.push_back(f);
            for (const auto& [db, f] : last_queue)
                all.push_back(f);
            all.push_back(last_errors);
            all.insert(all.end(), last_client_leaks.begin(), last_client_leaks.end());
        }
        // Circuit breakers (issue 6) as findings: their changes reach the journal, logs and alerts.
        if (p.valid) {
            for (const auto& b : p.breakers) {
                detect::Finding f;
                f.kind = "circuit_breaker";
                f.subject = b.database;
                f.database = b.database;
                f.severity = b.state == "open"                                   ? detect::Severity::critical
                             : b.state == "half-open" || b.state == "restarting" ? detect::Severity::warning
                                                                                 : detect::Severity::ok;
                // An outage (issue 15) is journaled when it starts and, with its duration, when it ends.
                f.summary =
                    b.state == "closed"
                        ? (b.last_outage.empty() ? "circuit breaker closed"
                                                 : "circuit breaker closed; last outage: " + b.last_outage)
                    : b.state == "restarting" ? b.reason + " (clients wait)"
                                              : "circuit breaker " + b.state + ": " + b.reason;
                f.evidence = {{"opens", static_cast<double>(b.opens)}};
                all.push_back(std::move(f));
            }
        }
        journal_changes(all);
        return all;
    }
    // ---- responders (issue 6): evaluator thread ----
    std::vector<std::unique_ptr<respond::ResponderRunner>> runners;  // one per target
    std::vector<std::unique_ptr<dbview::PgSampler>> signallers;      // their signalling connections
    std::vector<double> responded_t;                                 // sample time of the last pass

    void start_responders() {
        respond::ResponderSettings rs;
        rs.kill_idle_after_s = seconds(cfg->kill_idle_after);
        rs.cancel_long_after_s = seconds(cfg->cancel_long_after);
        rs.cancel_grace_s = seconds(cfg->cancel_grace_period);
        rs.kill_leak_after_s = seconds(cfg->kill_leak_after);
        rs.max_actions_per_minute = cfg->max_actions_per_minute;
        rs.protect_users = cfg->protect_users;
        rs.protect_applications = cfg->protect_applications;
        auto& g = respond::guard();
        g.reset(respond::parse_mode(cfg->respond).value_or(respond::Mode::dry_run));
        const std::pair<respond::ResponderKind, const std::string*> own[] = {
            {respond::ResponderKind::terminate_idle, &cfg->respond_terminate_idle},
            {respond::ResponderKind::cancel_long, &cfg->respond_cancel_long},
            {respond::ResponderKind::end_leaks, &cfg->respond_end_leaks}};
        for (const auto& [kind, value] : own) {
            if (auto m = respond::parse_mode(*value)) g.set_mode(kind, *m);
            g.set_responder_detail(kind, respond::ResponderRunner::describe(kind, rs));
        }
        for (size_t i = 0; i < targets.size(); ++i) {
            signallers.push_back(std::make_unique<dbview::PgSampler>(targets[i].conninfo));
            auto* signaller = signallers.back().get();
            respond::ResponderRunner::Hooks hooks;
            hooks.cancel_backend = [signaller](int64_t pid) { return signaller->cancel_backend(pid); };
            hooks.terminate_backend = [signaller](int64_t pid) { return signaller->terminate_backend(pid); };
            hooks.post_to_io = [this](const respond::Decision& d,
                                      std::function<void(bool acted, std::string detail)> done) {
                asio::post(io, [this, d, done = std::move(done), alive = publisher_alive] {
                    if (!*alive) return;
                    auto result = respond::apply_on_io_thread(proxy, d);
                    done(result.acted, std::move(result.detail));
                });
            };
            hooks.journal = [this](const nlohmann::json& j) { journal.append(j); };
            runners.push_back(
                std::make_unique<respond::ResponderRunner>(targets[i].name, rs, std::move(hooks)));
            responded_t.push_back(-1);
        }
    }

    void respond_pass(const ProxySnapshot& p,
                      const std::vector<std::pair<double, std::optional<dbview::Snapshot>>>& views) {
        for (size_t i = 0; i < views.size() && i < runners.size(); ++i) {
            const auto& [t, snap] = views[i];
            if (!snap || t <= responded_t[i]) continue;
            responded_t[i] = t;
            runners[i]->run(*snap, p.servers, now_s());
        }
    }

    // ---- adaptive pool size (issue 6 part 4): evaluator thread ----
    std::vector<double> budgeted_t;              // sample time of the last budget per target
    std::map<std::string, int> adaptive_logged;  // "db/user" -> the limit last journaled

    // The budget of the adaptive pools on each instance: its usable slots minus the connections that are
    // not poolguard's pools' (other clients, superusers, this control plane's own). The pools live on the
    // io thread: post the sample there.
    void post_budgets(const ProxySnapshot& p,
                      const std::vector<std::pair<double, std::optional<dbview::Snapshot>>>& views) {
        if (!p.valid) return;
        bool any_adaptive = false;
        for (const auto& a : p.adaptive)
            any_adaptive = any_adaptive || a.enabled;
        if (!any_adaptive) return;
        budgeted_t.resize(views.size(), -1);
        // A budget outlives a few missed samples, not a dead sampler.
        const auto valid_for = std::max(3 * std::chrono::duration_cast<Clock::duration>(cfg->sample_interval),
                                        Clock::duration(std::chrono::seconds(5)));
        for (size_t i = 0; i < views.size() && i < targets.size(); ++i) {
            const auto& [t, snap] = views[i];
            if (!snap || t <= budgeted_t[i]) continue;
            budgeted_t[i] = t;
            // Which of them are poolguard's own is decided on the io thread, against its servers of now.
            std::vector<int64_t> pids;
            for (const auto& s : snap->sessions)
                if (!s.system && !s.replication) pids.push_back(s.id);
            asio::post(io,
                       [this, host = targets[i].host, port = targets[i].port, usable = snap->usable(),
                        pids = std::move(pids), until = Clock::now() + valid_for, alive = publisher_alive] {
                           if (*alive) proxy.pools().set_instance_budget(host, port, usable, pids, until);
                       });
        }
    }

    // A journal line when a pool's adaptive limit moved meaningfully since the last one (not every window).
    void journal_adaptive(const ProxySnapshot& p) {
        if (!p.valid) return;
        for (const auto& a : p.adaptive) {
            if (!a.enabled) continue;
            const std::string key = a.database + "/" + a.user;
            auto [it, inserted] = adaptive_logged.try_emplace(key, a.limit);
            const int before = it->second;
            if (!inserted && !pool::AdaptiveLimit::meaningful_change(before, a.limit, a.min_limit, a.budget))
                continue;
            it->second = a.limit;
            nlohmann::json j;
            j["time"] = format_time(std::chrono::system_clock::now());
            j["event"] = "adaptive_limit";
            j["kind"] = "adaptive_limit";
            j["subject"] = key;
            j["database"] = a.database;
            j["severity"] = "ok";
            j["summary"] = inserted
                               ? fmt::format("adaptive pool size on: limit {} (min {}, budget {} from {})",
                                             a.limit, a.min_limit, a.budget, a.budget_source)
                               : fmt::format(
                                     "adaptive pool limit {} -> {} (min {}, budget {} from {}; "
                                     "latency {:.2f} ms vs {:.2f} ms long-term)",
                                     before, a.limit, a.min_limit, a.budget, a.budget_source, a.latency_ms,
                                     a.long_latency_ms);
            j["evidence"] = {{"limit", a.limit},           {"previous", before},
                             {"budget", a.budget},         {"min", a.min_limit},
                             {"latency_ms", a.latency_ms}, {"long_latency_ms", a.long_latency_ms},
                             {"gradient", a.gradient}};
            journal.append(j);
        }
    }

    static void publish_guard_rows(const std::vector<detect::Finding>& findings) {
        std::vector<respond::GuardRow> rows;
        for (const auto& f : findings)
            rows.push_back(respond::GuardRow{"detector",
                                             f.subject.empty() ? f.kind : f.kind + " " + f.subject, "",
                                             detect::to_string(f.severity), f.summary});
        respond::guard().set_detector_rows(std::move(rows));
    }

    std::map<std::string, detect::Finding> last_leak;
    detect::Finding last_errors;
    std::vector<detect::Finding> last_client_leaks;

    void journal_changes(const std::vector<detect::Finding>& all) {
        const auto now = std::chrono::system_clock::now();
        std::set<std::string> present;
        for (const auto& f : all) {
            const std::string key = f.kind + "|" + f.subject;
            present.insert(key);
            auto it = previous.find(key);
            const auto before = it == previous.end() ? detect::Severity::ok : it->second.severity;
            if (f.severity != before) {
                journal.append(journal_entry(f, before, now));
                log_change(f, before);
            }
            previous[key] = f;
        }
        // Subjects that disappeared (a leaking client that committed or left) are resolved.
        for (auto it = previous.begin(); it != previous.end();) {
            if (present.contains(it->first)) {
                ++it;
                continue;
            }
            if (it->second.severity != detect::Severity::ok) {
                detect::Finding f = it->second;
                const auto before = f.severity;
                f.severity = detect::Severity::ok;
                f.summary = "cleared: " + f.summary;
                journal.append(journal_entry(f, before, now));
                log_change(f, before);
            }
            it = previous.erase(it);
        }
    }

    static void log_change(const detect::Finding& f, detect::Severity before) {
        if (f.severity == detect::Severity::ok)
            spdlog::info("detector {} {} cleared (was {}): {}", f.kind, f.subject, detect::to_string(before),
                         f.summary);
        else
            spdlog::warn("detector {} {} {}: {}", f.kind, f.subject, detect::to_string(f.severity),
                         f.summary);
    }

    // ---- HTTP ----
    Status start_http() {
        const std::string& listen = cfg->http_listen;
        const size_t colon = listen.rfind(':');
        std::string host = listen.substr(0, colon);
        if (host.size() >= 2 && host.front() == '[') host = host.substr(1, host.size() - 2);
        if (host.empty() || host == "*") host = "0.0.0.0";
        const int port = std::stoi(listen.substr(colon + 1));
        http = std::make_unique<httplib::Server>();
        // httplib's default also sets SO_REUSEPORT: a second poolguard would then share the port silently.
        http->set_socket_options([](socket_t sock) {
            int yes = 1;
            ::setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
        });
        http->Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
            res.set_content(render_metrics(copy_status()), "text/plain; version=0.0.4; charset=utf-8");
        });
        http->Get("/healthz", [](const httplib::Request&, httplib::Response& res) {
            res.set_content("ok\n", "text/plain");
        });
        http->Get("/api/v1/status", [this](const httplib::Request&, httplib::Response& res) {
            res.set_content(status_json(copy_status()).dump(2), "application/json");
        });
        http->Get("/api/v1/incidents", [this](const httplib::Request&, httplib::Response& res) {
            res.set_content(journal.recent().dump(2), "application/json");
        });
        http->Get("/api/v1/guard", [this](const httplib::Request&, httplib::Response& res) {
            res.set_content(guard_with_pools_json().dump(2), "application/json");
        });
        auto change_guard = [this, token = cfg->http_api_token](const httplib::Request& req,
                                                                httplib::Response& res) {
            // Changing a responder's mode can terminate backends: only with the configured token. A browser
            // page cannot add this header to a cross-site request, so it cannot switch responders either.
            if (token.empty()) {
                res.status = 403;
                res.set_content(
                    R"({"error": "changes over HTTP are off: set http_api_token in [poolguard] and )"
                    R"(send Authorization: Bearer <token>, or use SET in the admin console"})",
                    "application/json");
                return;
            }
            if (!bearer_token_matches(req.get_header_value("Authorization"), token)) {
                res.status = 401;
                res.set_header("WWW-Authenticate", "Bearer");
                res.set_content(R"({"error": "missing or wrong Authorization: Bearer <http_api_token>"})",
                                "application/json");
                return;
            }
            res.status = 200;
            auto body = nlohmann::json::parse(req.body, nullptr, false);
            if (body.is_discarded() || !body.is_object()) body = nlohmann::json::object();
            for (const auto& [key, value] : req.params)
                body[key] = value;
            if (body.empty()) {
                res.status = 400;
                res.set_content(R"({"error": "expected {\"respond_terminate_idle\": \"on\"} or ?key=value"})",
                                "application/json");
                return;
            }
            for (const auto& [key, value] : body.items()) {
                const std::string v = value.is_string() ? value.get<std::string>() : value.dump();
                if (auto st = respond::guard().set(key, v); !st) {
                    res.status = 400;
                    res.set_content(nlohmann::json{{"error", st.error().message}}.dump(), "application/json");
                    return;
                }
                spdlog::info("HTTP /api/v1/guard: {} = {}", key, v);
                // The same SET as the admin console's, on the io thread, so SHOW CONFIG agrees.
                asio::post(io, [this, key = std::string(key), v, alive = publisher_alive] {
                    if (*alive) (void)proxy.admin_backend().set(key, v);
                });
            }
            res.set_content(guard_with_pools_json().dump(2), "application/json");
        };
        http->Post("/api/v1/guard", change_guard);
        http->Put("/api/v1/guard", change_guard);
        if (!http->bind_to_port(host, port))
            return fail(fmt::format("http_listen = {}: cannot listen on {}:{}", listen, host, port));
        http_thread = std::thread([this] { http->listen_after_bind(); });
        spdlog::info(
            "control plane: HTTP endpoint on {} (/metrics, /healthz, /api/v1/status, /api/v1/incidents, "
            "/api/v1/guard)",
            listen);
        return {};
    }

    ControlStatus copy_status() const {
        std::lock_guard lock(mutex);
        return status;
    }

    // GET /api/v1/guard: the SHOW GUARD rows and the responders' modes.
    static nlohmann::json guard_json() {
        nlohmann::json j;
        nlohmann::json modes = nlohmann::json::object();
        for (auto kind : respond::kAllResponders)
            modes[respond::mode_key(kind)] = respond::to_string(respond::guard().mode(kind));
        j["modes"] = modes;
        nlohmann::json rows = nlohmann::json::array();
        for (const auto& r : respond::guard().rows())
            rows.push_back({{"component", r.component},
                            {"name", r.name},
                            {"mode", r.mode},
                            {"state", r.state},
                            {"detail", r.detail}});
        j["rows"] = rows;
        return j;
    }

    // The guard plus the priority classes and circuit breakers of the last published pool status (read
    // here from the copy the io thread published, never from the pools themselves).
    nlohmann::json guard_with_pools_json() const {
        nlohmann::json j = guard_json();
        const nlohmann::json st = status_json(copy_status());
        j["classes"] = st.value("classes", nlohmann::json::array());
        j["breakers"] = st.value("breakers", nlohmann::json::array());
        return j;
    }
};

ControlPlane::ControlPlane(asio::io_context& io, session::Proxy& proxy,
                           std::shared_ptr<const config::Config> config, SamplerFactory sampler_factory)
    : impl_(std::make_unique<Impl>(io, proxy, std::move(config), std::move(sampler_factory))) {
    if (!impl_->factory) {
        impl_->factory = [](const std::string& conninfo) -> SampleFn {
            auto sampler = std::make_shared<dbview::PgSampler>(conninfo);
            return [sampler] { return sampler->sample(); };
        };
    }
}

ControlPlane::~ControlPlane() {
    stop();
}

bool ControlPlane::wanted(const config::Config& cfg) {
    // A responder switched on needs the control plane even without an endpoint or journal.
    auto on = [](const std::string& m) { return respond::parse_mode(m) == respond::Mode::on; };
    return !cfg.http_listen.empty() || !cfg.journal_file.empty() || !cfg.alertmanager_url.empty() ||
           on(cfg.respond) || on(cfg.respond_terminate_idle) || on(cfg.respond_cancel_long) ||
           on(cfg.respond_end_leaks);
}

Status ControlPlane::start() {
    auto& d = *impl_;
    const auto& cfg = *d.cfg;
    if (auto st = d.journal.open(cfg.journal_file); !st) return st;
    if (!cfg.http_listen.empty())
        if (auto st = d.start_http(); !st) return st;
    d.targets = sample_targets(cfg, [&](const std::string& user) { return d.proxy.secret_for(user); });
    for (const auto& t : d.targets) {
        d.status.databases.push_back(DatabaseView{t.name, t.target, std::nullopt, "not sampled yet", 0});
        Impl::DbDetectors det;
        det.utilization = std::make_unique<detect::UtilizationDetector>(
            t.name, detect::UtilizationDetector::Settings{cfg.utilization_warning / 100.0,
                                                          cfg.utilization_critical / 100.0,
                                                          seconds(cfg.utilization_min_duration)});
        det.spike = std::make_unique<detect::SpikeDetector>(
            t.name, detect::SpikeDetector::Settings{seconds(cfg.spike_window), cfg.spike_min_connections});
        det.exhaustion = std::make_unique<detect::ExhaustionDetector>(
            t.name,
            detect::ExhaustionDetector::Settings{seconds(cfg.trend_window), seconds(cfg.exhaustion_horizon)});
        d.db_detectors.push_back(std::move(det));
    }
    d.start_responders();
    respond::guard().set_running(true);
    d.errors = std::make_unique<detect::ErrorDetector>(cfg.error_rate_warning);
    d.client_leaks = std::make_unique<detect::ClientLeakDetector>(seconds(cfg.leak_detection_threshold));
    if (!cfg.alertmanager_url.empty()) {
        char host[256] = {};
        ::gethostname(host, sizeof host - 1);
        const std::string instance =
            cfg.http_listen.empty() ? std::string(host) : std::string(host) + "/" + cfg.http_listen;
        d.pusher = std::make_unique<AlertPusher>(
            cfg.alertmanager_url, instance,
            std::chrono::seconds(std::max<int64_t>(1, cfg.alert_resend_interval.count() / 1'000'000)));
        d.pusher->start();
    }
    d.publish();
    d.publish_timer = std::make_unique<asio::steady_timer>(d.io);
    d.schedule_publish();
    for (size_t i = 0; i < d.targets.size(); ++i)
        d.threads.emplace_back([&d, i] { d.sampler_loop(i); });
    d.threads.emplace_back([&d] { d.evaluator_loop(); });
    spdlog::info("control plane: sampling {} database instance(s) every {} s{}{}", d.targets.size(),
                 seconds(cfg.sample_interval),
                 cfg.journal_file.empty() ? "" : ", journal " + cfg.journal_file,
                 cfg.alertmanager_url.empty() ? "" : ", alerts to " + cfg.alertmanager_url);
    return {};
}

void ControlPlane::stop() {
    auto& d = *impl_;
    respond::guard().set_running(false);
    *d.publisher_alive = false;
    {
        std::lock_guard lock(d.mutex);
        d.stopping = true;
    }
    d.cv.notify_all();
    for (auto& t : d.threads)
        if (t.joinable()) t.join();
    d.threads.clear();
    if (d.http) d.http->stop();
    if (d.http_thread.joinable()) d.http_thread.join();
    if (d.pusher) d.pusher->stop();
}

ControlStatus ControlPlane::status() const {
    return impl_->copy_status();
}

}  // namespace poolguard::control
