// Owns DSN parsing for the database-view tools: postgres:// and mysql:// URIs (and libpq key=value strings)
// into engine, user, password, host, port, database and query parameters.
#pragma once

#include <map>
#include <string>
#include <string_view>

#include "common/error.h"
#include "dbview/snapshot.h"

namespace poolguard::dbview {

struct Dsn {
    Engine engine = Engine::postgres;
    std::string user;
    std::string password;
    std::string host;  // "" = engine default (PostgreSQL: Unix socket; MySQL: localhost)
    int port = 0;      // 0 = engine default (5432 / 3306)
    std::string database;
    std::map<std::string, std::string> params;  // ?key=value&... (percent-decoded)
    std::string original;                       // the text as given (handed to libpq unchanged)

    int port_or_default() const { return port != 0 ? port : (engine == Engine::postgres ? 5432 : 3306); }
    // The DSN with the password replaced by "***", for messages and logs.
    std::string redacted() const;
    // A libpq "key='value' ..." string with exactly what parse_dsn understood (so libpq and poolguard agree
    // on user, password and host even when the URI is unusual); query parameters are passed through.
    std::string libpq_conninfo() const;
};

// Accepts postgres://, postgresql://, mysql://, mariadb:// URIs, and libpq "key=value" conninfo strings
// (PostgreSQL). Percent-escapes are decoded; [v6] hosts are unbracketed. The Error says what is wrong in
// one line.
Result<Dsn> parse_dsn(std::string_view text);

}  // namespace poolguard::dbview
