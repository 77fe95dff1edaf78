// Owns loading pgbouncer.ini into Config: per-section handling, validation, lookups, SHOW CONFIG / SET.
// The parameter table itself is in param_table.{h,cpp}.
#include "config/config.h"

#include <algorithm>
#include <climits>
#include <cstdint>
#include <cstdio>
#include <span>
#include <string_view>
#include <utility>
#include <variant>

#include "config/connstring.h"
#include "config/host_list.h"
#include "config/ini_parser.h"
#include "config/param_table.h"
#include "config/tracked_parameters.h"
#include "config/user_settings.h"
#include "config/value_parser.h"

namespace poolguard::config {

using namespace params;

const char* to_string(PoolMode mode) {
    switch (mode) {
        case PoolMode::kSession:
            return "session";
        case PoolMode::kTransaction:
            return "transaction";
        case PoolMode::kStatement:
            return "statement";
    }
    return "session";
}

const char* to_string(AuthType type) {
    switch (type) {
        case AuthType::kTrust:
            return "trust";
        case AuthType::kPlain:
            return "plain";
        case AuthType::kMd5:
            return "md5";
        case AuthType::kScramSha256:
            return "scram-sha-256";
        case AuthType::kAny:
            return "any";
        case AuthType::kHba:
            return "hba";
        case AuthType::kCert:
            return "cert";
    }
    return "md5";
}

std::string format_warning(const LoadWarning& warning) {
    std::string out = warning.file;
    if (warning.line > 0) out += ":" + std::to_string(warning.line);
    return out + ": " + warning.message;
}

PoolMode Config::effective_pool_mode(const DatabaseConfig& db, const UserConfig* user) const {
    // PgBouncer's order: the user's setting wins over the database's, which wins over the global one.
    if (user != nullptr && user->pool_mode) return *user->pool_mode;
    if (db.pool_mode) return *db.pool_mode;
    return pool_mode;
}

int Config::effective_pool_size(const DatabaseConfig& db) const {
    return db.pool_size.value_or(default_pool_size);
}

int Config::effective_min_pool_size(const DatabaseConfig& db) const {
    return db.min_pool_size.value_or(min_pool_size);
}

int Config::effective_max_db_connections(const DatabaseConfig& db) const {
    return db.max_db_connections > 0 ? db.max_db_connections : max_db_connections;
}

int Config::effective_max_user_connections(const UserConfig* user) const {
    return user != nullptr && user->max_user_connections > 0 ? user->max_user_connections
                                                             : max_user_connections;
}

int Config::effective_reserve_pool_size(const DatabaseConfig& db) const {
    return db.reserve_pool.value_or(reserve_pool_size);
}

bool Config::effective_adaptive_pool(const DatabaseConfig& db) const {
    return db.adaptive_pool.value_or(adaptive_pool);
}

const DatabaseConfig* Config::find_database(const std::string& name) const {
    const DatabaseConfig* fallback = nullptr;
    for (const DatabaseConfig& db : databases) {
        if (db.name == name) return &db;
        if (db.name == "*") fallback = &db;
    }
    return fallback;
}

const UserConfig* Config::find_user(const std::string& name) const {
    for (const UserConfig& user : users) {
        if (user.name == name) return &user;
    }
    return nullptr;
}

std::optional<DatabaseConfig> Config::resolve_database(const std::string& name) const {
    const DatabaseConfig* db = find_database(name);
    if (db == nullptr) return std::nullopt;
    DatabaseConfig resolved = *db;
    if (resolved.name != name) {
        resolved.name = name;
        if (resolved.dbname.empty()) resolved.dbname = name;
    }
    return resolved;
}

const RawEntry* Config::poolguard_option(const std::string& key) const {
    for (auto it = poolguard_entries.rbegin(); it != poolguard_entries.rend(); ++it) {
        if (it->key == key) return &*it;
    }
    return nullptr;
}

namespace {

// The warning every accepted but unimplemented setting gets (PgBouncer 1.25 configurations load unchanged).
std::string not_implemented(std::string_view what) {
    return "accepted, not implemented: " + std::string(what);
}

std::string location(const std::string& file, int line) {
    return line > 0 ? file + ":" + std::to_string(line) + ": " : file + ": ";
}

// The message every bad value gets: file, line, the value as written, the parameter and the reason.
std::string invalid_value(const IniEntry& entry, std::string_view value, std::string_view param,
                          std::string_view reason, std::string_view context = {}) {
    std::string message = location(entry.file, entry.line) + "invalid value '" + std::string(value) +
                          "' for " + std::string(param) + std::string(context) + ": " + std::string(reason);
    if (value.find_first_of(";#") != std::string_view::npos) {
        message += " (';' and '#' start a comment only at the beginning of a line)";
    }
    return message;
}

// ---- The loader: one instance per load, fed line by line by the ini parser ----

class Loader {
  public:
    explicit Loader(std::string path) { result_.config.file = std::move(path); }
    // Starts from an existing configuration (SET on the admin console).
    explicit Loader(const Config& base) { result_.config = base; }
    Config& config() { return result_.config; }

    Status on_entry(const IniEntry& entry) {
        if (entry.kind == IniEntry::Kind::kSection) return on_section(entry);
        const std::string& section = entry.section;
        if (section.empty()) {
            // Nothing could ever read such a line (PgBouncer refuses it too); most likely a header is
            // missing.
            return fail(location(entry.file, entry.line) + "'" + entry.key +
                        "' is outside of any section; add a [pgbouncer], [databases], ... header above it");
        }
        if (section == "pgbouncer") return on_param(entry, pgbouncer_params(), "pgbouncer");
        if (section == "poolguard") {
            result_.config.poolguard_entries.push_back(
                RawEntry{to_lower(entry.key), entry.value, entry.file, entry.line});
            return on_param(entry, poolguard_params(), "poolguard");
        }
        if (section == "databases") return on_database(entry);
        if (section == "users") return on_user(entry);
        if (section == "classes") return on_class(entry);
        if (section == "peers") {
            auto peer = parse_peer(entry.key, entry.value);
            if (!peer) return fail(location(entry.file, entry.line) + peer.error());
            peer->line = entry.line;
            auto& peers = result_.config.peers;
            std::erase_if(peers, [&](const PeerConfig& p) { return p.peer_id == peer->peer_id; });
            peers.push_back(std::move(*peer));
        }
        result_.config.extra_sections[section].push_back(
            RawEntry{entry.key, entry.value, entry.file, entry.line});
        return {};
    }

    Result<LoadResult> finish() {
        Config& cfg = result_.config;
        if (set_at_.find("conffile") == set_at_.end()) cfg.conffile = cfg.file;
        warn_not_implemented();
        warn_untracked_parameters();
        if (Status status = validate(); !status) return std::unexpected(status.error());
        return std::move(result_);
    }

  private:
    struct Origin {
        std::string file;
        int line = 0;
        long order = 0;  // position among all lines read, across included files
    };

    void warn(const IniEntry& entry, std::string message) {
        result_.warnings.push_back(LoadWarning{entry.file, entry.line, std::move(message)});
    }

    // [classes] NAME = application_name=GLOB, user=GLOB, priority=N, max_share=PERCENT (issue 6).
    Status on_class(const IniEntry& entry) {
        auto parsed = parse_class_line(entry.key, entry.value);
        if (!parsed) return fail(location(entry.file, entry.line) + "[classes] " + parsed.error().message);
        parsed->line = entry.line;
        auto& classes = result_.config.classes;
        for (const auto& c : classes) {
            if (c.name == parsed->name)
                return fail(location(entry.file, entry.line) + "[classes] class '" + c.name +
                            "' is already defined at line " + std::to_string(c.line));
        }
        classes.push_back(std::move(*parsed));
        return {};
    }

    Status on_section(const IniEntry& entry) {
        static constexpr std::string_view kKnown[] = {"databases", "users", "pgbouncer",
                                                      "poolguard", "peers", "classes"};
        if (std::find(std::begin(kKnown), std::end(kKnown), entry.section) == std::end(kKnown)) {
            warn(entry, "unknown section [" + entry.section + "]; poolguard does not interpret its lines");
        }
        return {};
    }

    Status on_param(const IniEntry& entry, std::span<const ParamSpec> params, std::string_view section) {
        std::string name = to_lower(entry.key);
        const ParamSpec* spec = find_param(params, name);
        if (spec == nullptr) {
            std::string message = "unknown parameter '" + name + "' in [" + std::string(section) + "]";
            if (section == "pgbouncer" && find_param(poolguard_params(), name) != nullptr) {
                message += "; it belongs in [poolguard]";
            } else if (section == "poolguard" && find_param(pgbouncer_params(), name) != nullptr) {
                message += "; it belongs in [pgbouncer]";
            }
            warn(entry, std::move(message));
            return {};
        }
        if (Status status = assign(entry, *spec); !status) return status;
        set_at_[name] = Origin{entry.file, entry.line, ++order_};
        Config& cfg = result_.config;
        if (name == "job_name")
            cfg.service_name = cfg.job_name;  // PgBouncer keeps one setting under two names
        if (name == "service_name") cfg.job_name = cfg.service_name;
        return {};
    }

    Status assign(const IniEntry& entry, const ParamSpec& spec) {
        Config& cfg = result_.config;
        const std::string& value = entry.value;
        auto bad = [&](const std::string& reason) {
            return fail(invalid_value(entry, value, spec.name, reason));
        };
        switch (spec.kind) {
            case ValueKind::kString:
                cfg.*std::get<std::string Config::*>(spec.field) = value;
                return {};
            case ValueKind::kInt:
            case ValueKind::kIntOrBool: {
                auto parsed = spec.kind == ValueKind::kInt ? parse_integer(value, spec.min, spec.max)
                                                           : parse_integer_or_bool(value, spec.min, spec.max);
                if (!parsed) return bad(parsed.error());
                cfg.*std::get<int Config::*>(spec.field) = static_cast<int>(*parsed);
                return {};
            }
            case ValueKind::kBool: {
                auto parsed = parse_bool(value);
                if (!parsed) return bad(parsed.error());
                cfg.*std::get<bool Config::*>(spec.field) = *parsed;
                return {};
            }
            case ValueKind::kDouble: {
                auto parsed = parse_real(value, spec.real_min, spec.real_max);
                if (!parsed) return bad(parsed.error());
                cfg.*std::get<double Config::*>(spec.field) = *parsed;
                return {};
            }
            case ValueKind::kDuration: {
                auto parsed = parse_duration(value);
                if (!parsed) return bad(parsed.error());
                cfg.*std::get<Micros Config::*>(spec.field) = *parsed;
                return {};
            }
            case ValueKind::kList:
                cfg.*std::get<std::vector<std::string> Config::*>(spec.field) = parse_list(value);
                return {};
            case ValueKind::kAddressList: {
                std::vector<std::string> addresses = parse_list(value);
                for (const std::string& address : addresses) {
                    if (address.find_first_of(" \t") != std::string::npos) {
                        return bad("addresses must be separated by commas");
                    }
                }
                cfg.*std::get<std::vector<std::string> Config::*>(spec.field) = std::move(addresses);
                return {};
            }
            case ValueKind::kOctal: {
                auto parsed = parse_octal_mode(value);
                if (!parsed) return bad(parsed.error());
                cfg.*std::get<int Config::*>(spec.field) = *parsed;
                return {};
            }
            case ValueKind::kPoolMode: {
                auto parsed = parse_pool_mode(value);
                if (!parsed) return bad(parsed.error());
                cfg.*std::get<PoolMode Config::*>(spec.field) = *parsed;
                return {};
            }
            case ValueKind::kAuthType: {
                auto parsed = parse_auth_type(value);
                if (!parsed) return bad(parsed.error());
                cfg.*std::get<AuthType Config::*>(spec.field) = *parsed;
                return {};
            }
            case ValueKind::kSslMode: {
                auto parsed = parse_sslmode(value);
                if (!parsed) return bad(parsed.error());
                cfg.*std::get<std::string Config::*>(spec.field) = std::move(*parsed);
                return {};
            }
            case ValueKind::kHostPort: {
                auto parsed = parse_host_port(value);
                if (!parsed) return bad(parsed.error());
                cfg.*std::get<std::string Config::*>(spec.field) = std::move(*parsed);
                return {};
            }
        }
        return {};
    }

    Status on_database(const IniEntry& entry) {
        const std::string& name = entry.key;
        if (name == "pgbouncer") {
            return fail(location(entry.file, entry.line) +
                        "database name 'pgbouncer' is reserved for the admin console");
        }
        std::string context = " in database '" + name + "'";
        auto pairs = parse_connstring(entry.value);
        if (!pairs) {
            return fail(location(entry.file, entry.line) + "invalid connection string for database '" + name +
                        "': " + pairs.error());
        }
        DatabaseConfig db;
        db.name = name;
        db.line = entry.line;
        for (const ConnstringPair& pair : *pairs) {
            const std::string& key = pair.key;
            const std::string& value = pair.value;
            auto bad = [&](const std::string& reason) {
                return fail(invalid_value(entry, value, key, reason, context));
            };
            auto integer = [&](std::int64_t min, std::int64_t max) -> std::expected<int, std::string> {
                auto parsed = parse_integer(value, min, max);
                if (!parsed) return std::unexpected(parsed.error());
                return static_cast<int>(*parsed);
            };
            if (key == "host") {
                db.host = value;
            } else if (key == "port") {
                if (value.find(',') != std::string::npos) {
                    db.port_list = value;  // one port per host (checked with the host list below)
                    continue;
                }
                auto port = integer(1, 65535);
                if (!port) return bad(port.error());
                db.port = *port;
            } else if (key == "dbname") {
                db.dbname = value;
            } else if (key == "user") {
                db.user = value;
            } else if (key == "password") {
                db.password = value;
            } else if (key == "auth_user") {
                db.auth_user = value;
            } else if (key == "auth_dbname") {
                db.auth_dbname = value;
            } else if (key == "auth_query") {
                db.auth_query = value;
            } else if (key == "client_encoding") {
                db.client_encoding = value;
            } else if (key == "datestyle") {
                db.datestyle = value;
            } else if (key == "timezone") {
                db.timezone = value;
            } else if (key == "application_name") {
                db.application_name = value;
            } else if (key == "connect_query") {
                db.connect_query = value;
            } else if (key == "pool_size" || key == "min_pool_size" || key == "reserve_pool" ||
                       key == "reserve_pool_size" || key == "max_db_connections") {
                auto count = integer(0, INT_MAX);
                if (!count) return bad(count.error());
                if (key == "pool_size") db.pool_size = *count;
                if (key == "min_pool_size") db.min_pool_size = *count;
                if (key == "reserve_pool" || key == "reserve_pool_size") db.reserve_pool = *count;
                if (key == "max_db_connections") db.max_db_connections = *count;
            } else if (key == "max_db_client_connections") {
                auto count = integer(0, INT_MAX);
                if (!count) return bad(count.error());
                db.max_db_client_connections = *count;
            } else if (key == "server_lifetime") {
                auto lifetime = parse_duration(value);
                if (!lifetime) return bad(lifetime.error());
                db.server_lifetime = *lifetime;
            } else if (key == "load_balance_hosts") {
                auto mode = parse_load_balance_hosts(value);
                if (!mode) return bad(mode.error());
                db.load_balance_round_robin = *mode;
            } else if (key == "adaptive_pool") {
                auto on = parse_bool(value);
                if (!on) return bad(on.error());
                db.adaptive_pool = *on;
            } else if (key == "pool_mode") {
                auto mode = parse_pool_mode(value);
                if (!mode) return bad(mode.error());
                db.pool_mode = *mode;
            } else {
                return fail(location(entry.file, entry.line) + "unknown parameter '" + key +
                            "' in connection string of database '" + name + "'");
            }
        }
        if (auto hosts = parse_host_list(db.host, db.port_list, db.port); !hosts) {
            return fail(invalid_value(entry, db.host + (db.port_list.empty() ? "" : " port=" + db.port_list),
                                      "host", hosts.error(), context));
        }
        // "*" keeps an empty dbname: the fallback connects to whatever database the client asked for.
        if (db.dbname.empty() && name != "*") db.dbname = name;
        auto& dbs = result_.config.databases;
        auto it =
            std::find_if(dbs.begin(), dbs.end(), [&](const DatabaseConfig& d) { return d.name == name; });
        if (it != dbs.end()) {
            const Origin& previous = db_origin_[name];
            warn(entry, "database '" + name + "' is defined again; the definition at " + previous.file + ":" +
                            std::to_string(previous.line) + " is replaced");
            *it = std::move(db);
        } else {
            dbs.push_back(std::move(db));
        }
        db_origin_[name] = Origin{entry.file, entry.line};
        return {};
    }

    Status on_user(const IniEntry& entry) {
        const std::string& name = entry.key;
        std::string context = " in user '" + name + "'";
        auto pairs = parse_connstring(entry.value);
        if (!pairs) {
            return fail(location(entry.file, entry.line) + "invalid settings for user '" + name +
                        "': " + pairs.error());
        }
        UserConfig user;
        user.name = name;
        user.line = entry.line;
        for (const ConnstringPair& pair : *pairs) {
            if (auto error = apply_user_setting(user, pair.key, pair.value)) {
                if (error->unknown)
                    return fail(location(entry.file, entry.line) + "unknown parameter '" + pair.key +
                                "' for user '" + name + "' (expected " + kUserSettingNames + ")");
                return fail(invalid_value(entry, pair.value, pair.key, error->reason, context));
            }
        }
        auto& users = result_.config.users;
        auto it =
            std::find_if(users.begin(), users.end(), [&](const UserConfig& u) { return u.name == name; });
        if (it != users.end()) {
            const Origin& previous = user_origin_[name];
            warn(entry, "user '" + name + "' is defined again; the definition at " + previous.file + ":" +
                            std::to_string(previous.line) + " is replaced");
            *it = std::move(user);
        } else {
            users.push_back(std::move(user));
        }
        user_origin_[name] = Origin{entry.file, entry.line};
        return {};
    }

    // Judged on the final values, so a setting changed back to its default by a later line stays quiet.
    void warn_not_implemented() {
        const Config& cfg = result_.config;
        std::vector<std::pair<long, LoadWarning>> found;
        for (std::span<const ParamSpec> params :
             {std::span(pgbouncer_params()), std::span(poolguard_params())}) {
            for (const ParamSpec& spec : params) {
                auto origin = set_at_.find(std::string(spec.name));
                if (origin == set_at_.end() || spec.support == Support::kImplemented) continue;
                std::string what;
                if (spec.unsupported != nullptr) {
                    what = spec.unsupported(cfg);
                } else if (!is_default(cfg, defaults_, spec.field)) {
                    what = std::string(spec.name);
                }
                if (what.empty()) continue;
                const Origin& where = origin->second;
                found.emplace_back(where.order, LoadWarning{where.file, where.line, not_implemented(what)});
            }
        }
        std::sort(found.begin(), found.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
        for (auto& [order, warning] : found)
            result_.warnings.push_back(std::move(warning));
    }

    // track_extra_parameters names poolguard cannot track (config/tracked_parameters.h): loaded, named.
    void warn_untracked_parameters() {
        const Origin where = origin_of("track_extra_parameters");
        for (const std::string& name : result_.config.track_extra_parameters) {
            if (trackable_index(to_lower(name)) >= 0) continue;
            result_.warnings.push_back(LoadWarning{
                where.file, where.line, not_implemented("tracking " + name + " (track_extra_parameters)")});
        }
    }

    Origin origin_of(std::string_view param) const {
        auto it = set_at_.find(std::string(param));
        if (it != set_at_.end()) return it->second;
        return Origin{result_.config.file, 0};
    }

    // Settings that load individually but cannot work together.
    Status validate() const {
        const Config& cfg = result_.config;
        bool needs_passwords = cfg.auth_type == AuthType::kPlain || cfg.auth_type == AuthType::kMd5 ||
                               cfg.auth_type == AuthType::kScramSha256;
        bool any_auth_user = !cfg.auth_user.empty() ||
                             std::any_of(cfg.databases.begin(), cfg.databases.end(),
                                         [](const DatabaseConfig& db) { return !db.auth_user.empty(); });
        if (needs_passwords && cfg.auth_file.empty() && !any_auth_user) {
            Origin origin = origin_of("auth_type");
            std::string which = std::string("auth_type=") + to_string(cfg.auth_type);
            if (origin.line == 0) which += " (the default)";
            return fail(location(origin.file, origin.line) + "auth_file is required for " + which +
                        ": set auth_file (or auth_user with auth_query), or choose another auth_type");
        }
        if (cfg.auth_type == AuthType::kHba && cfg.auth_hba_file.empty()) {
            Origin origin = origin_of("auth_type");
            return fail(location(origin.file, origin.line) + "auth_hba_file is required for auth_type=hba");
        }
        bool has_fallback = cfg.find_database("*") != nullptr;
        auto names_database = [&](const std::string& name) {
            return has_fallback || cfg.find_database(name) != nullptr;
        };
        if (!cfg.auth_dbname.empty() && !names_database(cfg.auth_dbname)) {
            Origin origin = origin_of("auth_dbname");
            return fail(location(origin.file, origin.line) + "invalid value '" + cfg.auth_dbname +
                        "' for auth_dbname: not a database in [databases]");
        }
        for (const DatabaseConfig& db : cfg.databases) {
            if (!db.auth_dbname.empty() && !names_database(db.auth_dbname)) {
                const Origin& origin = db_origin_.at(db.name);
                return fail(location(origin.file, origin.line) + "invalid value '" + db.auth_dbname +
                            "' for auth_dbname in database '" + db.name + "': not a database in [databases]");
            }
        }
        return validate_control_plane();
    }

    // [poolguard] control-plane settings that are valid one by one but not together.
    Status validate_control_plane() const {
        const Config& cfg = result_.config;
        auto refuse = [&](std::string_view param, const std::string& value, const std::string& why) {
            Origin origin = origin_of(param);
            return fail(location(origin.file, origin.line) + "invalid value '" + value + "' for " +
                        std::string(param) + ": " + why);
        };
        auto seconds = [](Micros m) { return std::to_string(static_cast<double>(m.count()) / 1e6); };
        if (cfg.sample_interval.count() < 100'000)
            return refuse("sample_interval", seconds(cfg.sample_interval), "must be at least 0.1 s");
        if (cfg.alert_resend_interval.count() < 1'000'000)
            return refuse("alert_resend_interval", seconds(cfg.alert_resend_interval),
                          "must be at least 1 s");
        if (cfg.spike_window.count() < 1'000'000)
            return refuse("spike_window", seconds(cfg.spike_window), "must be at least 1 s");
        if (cfg.trend_window.count() < 1'000'000)
            return refuse("trend_window", seconds(cfg.trend_window), "must be at least 1 s");
        if (cfg.utilization_warning > cfg.utilization_critical)
            return refuse(
                "utilization_warning", std::to_string(cfg.utilization_warning),
                "must not exceed utilization_critical (" + std::to_string(cfg.utilization_critical) + ")");
        if (!cfg.alertmanager_url.empty() && !cfg.alertmanager_url.starts_with("http://"))
            return refuse("alertmanager_url", cfg.alertmanager_url,
                          "expected http://host:port (https is not supported)");
        if (!cfg.alertmanager_url.empty() && cfg.alertmanager_url.size() <= 7)
            return refuse("alertmanager_url", cfg.alertmanager_url, "no host after http://");
        return validate_responders();
    }

    // [poolguard] responder settings (src/respond).
    Status validate_responders() const {
        const Config& cfg = result_.config;
        auto refuse = [&](std::string_view param, const std::string& value, const std::string& why) {
            Origin origin = origin_of(param);
            return fail(location(origin.file, origin.line) + "invalid value '" + value + "' for " +
                        std::string(param) + ": " + why);
        };
        auto mode_ok = [](std::string v) {
            for (auto& ch : v)
                ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
            return v == "off" || v == "on" || v == "dry-run" || v == "dry_run" || v == "dryrun";
        };
        if (!mode_ok(cfg.respond)) return refuse("respond", cfg.respond, "expected off, dry-run or on");
        const std::pair<const char*, const std::string*> modes[] = {
            {"respond_terminate_idle", &cfg.respond_terminate_idle},
            {"respond_cancel_long", &cfg.respond_cancel_long},
            {"respond_end_leaks", &cfg.respond_end_leaks}};
        for (const auto& [key, value] : modes)
            if (!value->empty() && !mode_ok(*value))
                return refuse(key, *value, "expected off, dry-run or on");
        const std::pair<const char*, Micros> limits[] = {{"kill_idle_after", cfg.kill_idle_after},
                                                         {"cancel_long_after", cfg.cancel_long_after},
                                                         {"kill_leak_after", cfg.kill_leak_after}};
        for (const auto& [key, value] : limits)
            if (value.count() < 1'000'000)
                return refuse(key, std::to_string(static_cast<double>(value.count()) / 1e6),
                              "must be at least 1 s");
        return {};
    }

    LoadResult result_;
    const Config defaults_{};
    std::map<std::string, Origin> set_at_;  // parameter -> where it was last set
    std::map<std::string, Origin> db_origin_;
    std::map<std::string, Origin> user_origin_;
    long order_ = 0;
};

}  // namespace

Result<LoadResult> load_config(const std::string& path) {
    Loader loader(path);
    Status status = parse_ini_file(path, [&](const IniEntry& entry) { return loader.on_entry(entry); });
    if (!status) return std::unexpected(status.error());
    return loader.finish();
}

Result<LoadResult> parse_config(const std::string& text, const std::string& name) {
    Loader loader(name);
    Status status = parse_ini_text(text, name, [&](const IniEntry& entry) { return loader.on_entry(entry); });
    if (!status) return std::unexpected(status.error());
    return loader.finish();
}

}  // namespace poolguard::config

namespace poolguard::config {

std::vector<ParameterDescription> describe_parameters(const Config& config) {
    static const Config defaults;
    std::vector<ParameterDescription> out;
    for (const auto* table : {&pgbouncer_params(), &poolguard_params()}) {
        for (const ParamSpec& spec : *table) {
            // Secrets are shown as set or not: SHOW CONFIG is open to stats_users.
            const bool secret = spec.name == "control_password" || spec.name == "http_api_token";
            std::string value = format_value(config, spec);
            if (secret && !value.empty()) value = "********";
            out.push_back(ParameterDescription{std::string(spec.name), std::move(value),
                                               format_value(defaults, spec),
                                               changeable_at_runtime(spec.name)});
        }
    }
    return out;
}

Status set_parameter(Config& config, const std::string& key, const std::string& value) {
    const std::string name = to_lower(key);
    const bool in_pgbouncer = find_param(pgbouncer_params(), name) != nullptr;
    const ParamSpec* spec =
        in_pgbouncer ? find_param(pgbouncer_params(), name) : find_param(poolguard_params(), name);
    if (spec == nullptr) return fail("unknown config parameter: " + key, "42704");
    if (!changeable_at_runtime(name))
        return fail("parameter " + name + " cannot be changed at run time; restart instead", "55P02");
    Loader loader(config);
    IniEntry entry;
    entry.kind = IniEntry::Kind::kKeyValue;
    entry.section = in_pgbouncer ? "pgbouncer" : "poolguard";
    entry.key = name;
    entry.value = value;
    entry.file = "SET";
    if (Status st = loader.on_entry(entry); !st) return fail(st.error().message, "22023");
    config = loader.config();
    return {};
}

}  // namespace poolguard::config
