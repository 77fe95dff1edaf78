// Owns encoding and decoding of the PostgreSQL v3 messages poolguard creates or must inspect itself.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/error.h"

namespace poolguard::protocol::pg {

// Authentication request codes (the int32 after 'R').
enum class AuthRequest : uint32_t {
    kOk = 0,
    kCleartextPassword = 3,
    kMd5Password = 5,
    kSasl = 10,
    kSaslContinue = 11,
    kSaslFinal = 12,
};

// ---- startup phase (no type byte) ----
enum class StartupKind { kStartup, kSslRequest, kGssEncRequest, kCancel };

struct StartupPacket {
    StartupKind kind = StartupKind::kStartup;
    uint32_t protocol = 0;
    std::vector<std::pair<std::string, std::string>> params;  // in order received
    uint32_t cancel_pid = 0;
    uint32_t cancel_key = 0;

    const std::string* param(std::string_view name) const;
};

inline constexpr uint32_t kMaxStartupPacket = 10000;  // as PostgreSQL's MAX_STARTUP_PACKET_LENGTH

// Decodes a startup-phase packet; `packet` is the whole packet including its 4-byte length.
Result<StartupPacket> parse_startup_packet(std::string_view packet);

// ---- backend messages poolguard writes to clients ----
struct ErrorFields {
    std::string severity = "ERROR";
    std::string sqlstate;
    std::string message;
    std::string detail;
    std::string hint;
};
void append_error(std::string& out, const ErrorFields& e, char type = 'E');
inline void append_error(std::string& out, std::string_view severity, std::string_view sqlstate,
                         std::string_view message) {
    append_error(out,
                 ErrorFields{std::string(severity), std::string(sqlstate), std::string(message), {}, {}});
}
void append_notice(std::string& out, std::string_view message, std::string_view sqlstate = "00000");
void append_auth_request(std::string& out, AuthRequest req, std::string_view data = {});
void append_sasl_mechanisms(std::string& out, const std::vector<std::string>& mechanisms);
void append_parameter_status(std::string& out, std::string_view name, std::string_view value);
void append_backend_key(std::string& out, uint32_t pid, uint32_t key);
void append_ready_for_query(std::string& out, char status);
void append_command_complete(std::string& out, std::string_view tag);
void append_row_description(std::string& out, const std::vector<std::string>& columns);  // all text columns
void append_data_row(std::string& out, const std::vector<std::optional<std::string>>& values);
void append_empty_query(std::string& out);

// ---- frontend messages poolguard writes to servers ----
void append_startup(std::string& out, const std::vector<std::pair<std::string, std::string>>& params);
void append_cancel_request(std::string& out, uint32_t pid, uint32_t key);
void append_password(std::string& out, std::string_view password);  // 'p' with a C string
void append_sasl_initial(std::string& out, std::string_view mechanism, std::string_view data);
void append_sasl_response(std::string& out, std::string_view data);
void append_query(std::string& out, std::string_view sql);
void append_sync(std::string& out);
void append_terminate(std::string& out);

// ---- decoding of backend messages poolguard inspects ----
// ErrorResponse / NoticeResponse body into fields (unknown fields ignored).
ErrorFields parse_error_fields(std::string_view body);
// ParameterStatus body: name, value.
std::optional<std::pair<std::string, std::string>> parse_parameter_status(std::string_view body);
// BackendKeyData body.
std::optional<std::pair<uint32_t, uint32_t>> parse_backend_key(std::string_view body);
// AuthenticationXXX body: the request code and the rest.
std::optional<std::pair<uint32_t, std::string_view>> parse_auth_request(std::string_view body);
// SASL mechanism list from an AuthenticationSASL body's rest.
std::vector<std::string> parse_sasl_mechanisms(std::string_view rest);

// ---- decoding of frontend messages poolguard inspects ----
// PasswordMessage carrying a plain/md5 password: the C string.
std::optional<std::string_view> parse_password(std::string_view body);
// SASLInitialResponse: mechanism and client-first data (length -1 = none).
std::optional<std::pair<std::string_view, std::string_view>> parse_sasl_initial(std::string_view body);
// Simple Query: the SQL text.
std::optional<std::string_view> parse_query(std::string_view body);

// Quotes a string as a SQL literal ('...' with '' doubling), for SET statements poolguard builds.
std::string quote_literal(std::string_view value);

}  // namespace poolguard::protocol::pg
