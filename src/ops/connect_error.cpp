// Owns the mapping from connection/server errors to explanations and advice.
#include "ops/connect_error.h"

#include <fmt/format.h>

namespace poolguard::ops {

namespace {

struct Advice {
    std::string what;
    std::string todo;
};

Advice advise(const Error& e, const dbview::Dsn* dsn) {
    const std::string& code = e.sqlstate;
    const bool mysql = dsn != nullptr && dsn->engine == dbview::Engine::mysql;
    const std::string where =
        dsn != nullptr
            ? fmt::format("{}:{}", dsn->host.empty() ? "localhost" : dsn->host, dsn->port_or_default())
            : "the server";
    const std::string user = dsn != nullptr && !dsn->user.empty() ? dsn->user : "(default user)";
    if (dsn == nullptr || e.message.starts_with("bad DSN"))
        return {e.message,
                "write the DSN as postgres://user:pass@host:port/db or mysql://user:pass@host:port/db "
                "(%-escape special characters in the password, e.g. @ as %40)"};
    if (code == "22023")
        return {"bad DSN: " + e.message,
                "fix the DSN: postgres://user:pass@host:port/db?sslmode=... with libpq's parameter names"};
    if (code == "28P01" || code == "1045")
        return {fmt::format("authentication failed for user {} at {} ({} {})", user, where,
                            mysql ? "MySQL error" : "SQLSTATE", code),
                "check the user and password in the DSN (or PGPASSWORD / ~/.pgpass); do not retry in a loop, "
                "failed logins still cost the server"};
    if (code == "53300" && !mysql) {
        const bool reserved = e.message.find("reserved") != std::string::npos;
        return {fmt::format("PostgreSQL at {} refused the connection: {} (SQLSTATE 53300)", where,
                            reserved ? "only the superuser-reserved slots are left"
                                     : "all connection slots are taken"),
                "connect as a superuser to use the reserved slots (superuser_reserved_connections), e.g. "
                "postgres://postgres@..., then run this command again"};
    }
    if (code == "1040")
        return {
            fmt::format("MySQL at {} refused the connection: Too many connections (error 1040)", where),
            "connect with a SUPER / CONNECTION ADMIN account (the server keeps max_connections+1 for it), or "
            "use the extra_port if one is configured, then run this command again"};
    if (code == "1203")
        return {
            fmt::format("MySQL at {}: user {} has reached max_user_connections (error 1203)", where, user),
            "connect as another (admin) user"};
    if (code == "08001" || code == "2002" || code == "2003" || code == "2005" || code == "2013")
        return {
            fmt::format("cannot reach {} at {}: {}", mysql ? "MySQL" : "PostgreSQL", where, e.message),
            "check host and port, that the server is running and listening there, and firewalls / security "
            "groups; a pooler address works too"};
    if (code == "3D000" || code == "1049")
        return {fmt::format("database \"{}\" does not exist at {}", dsn->database, where),
                mysql ? "use an existing database in the DSN path (e.g. /mysql)"
                      : "use an existing database in the DSN path (e.g. /postgres)"};
    if (code == "28000")
        return {fmt::format("{} at {} does not let user {} in: {}", mysql ? "MySQL" : "PostgreSQL", where,
                            user, e.message),
                "use a role that may log in from this host (pg_hba.conf), e.g. a superuser"};
    if (code == "57P03")
        return {fmt::format("PostgreSQL at {} is starting up or shutting down", where),
                "wait a few seconds and run the command again"};
    if (code == "42501" || code == "1227" || code == "1095")
        return {e.message,
                mysql ? "connect as an account with PROCESS and SUPER (or CONNECTION ADMIN)"
                      : "connect as a superuser or a member of pg_signal_backend / pg_read_all_stats"};
    return {e.message + (code.empty() ? std::string() : fmt::format(" [{}]", code)),
            "run with a superuser DSN; if it persists, check the server log"};
}

}  // namespace

std::string explain_error(const Error& error, const dbview::Dsn* dsn) {
    const Advice a = advise(error, dsn);
    return fmt::format("poolguard: {}\n  what to do: {}\n", a.what, a.todo);
}

}  // namespace poolguard::ops
