// Owns named prepared statements under transaction pooling, sans I/O: per-client and per-server statement
// tables, the in-order response queue of a server connection, and the rewriting of Parse/Bind/Describe/Close.
#pragma once

// How it works
// ------------
// A client's named statements live in its ClientStatements (client name -> StatementDef, the Parse body
// without the name). Every server connection keeps a bounded LRU cache, ServerStatements, of the definitions
// it has prepared under names of its own ("PGG_<n>", never reused on that connection). The Rewriter turns
// each client message into what the current server needs: a Parse of a definition the server already has is
// answered by poolguard itself; a Bind or Describe of a statement the server lacks is preceded by an injected
// Parse; evictions inject a Close. The ResponseQueue of the server connection remembers, in order, what each
// response belongs to, so that responses to injected messages are dropped and poolguard's own answers are
// emitted exactly where a direct connection would have produced them.
//
// Protocol invariants relied on (PostgreSQL protocol 3.0, src/backend/tcop/postgres.c):
//  1. The server processes frontend messages strictly in order and answers each in order; the message that
//     completes each request is: Parse '1', Bind '2', Close '3', Describe 'T' or 'n' (statement: after 't'),
//     Execute 'C', 'I' or 's', Sync / Query / FunctionCall 'Z'. Flush, CopyData/Done/Fail produce no response
//     of their own. 'N', 'S', 'A', 'D', 'G', 'H', 'W', 'd', 'c', 'V' never complete an extended request.
//  2. An ErrorResponse to an extended-protocol message (P/B/D/C/E) puts the server in "skip until Sync"
//     mode: every later message, including Query and FunctionCall, is read and ignored until a Sync, which
//     is always answered by 'Z'. An ErrorResponse to Query/FunctionCall/Sync does not; their 'Z' follows.
//  3. A failed or skipped Parse creates nothing; a skipped Close closes nothing; a Parse naming an existing
//     statement fails with 42P05 and keeps the old one; Close of a missing statement succeeds.
//  4. A portal copies what it needs at Bind: closing its statement afterwards does not affect the portal, so
//     evicting a statement right after a Bind that used it is safe.
//  5. Statement names are per server session; "DISCARD ALL" and "DEALLOCATE ALL" drop them all, and the
//     server reports it with exactly those CommandComplete tags.
//
// Choices and limitations
//  - Every ErrorResponse is forwarded, including one answering an injected Parse or Close (the client must
//    learn that its pipeline was aborted: the server skipped its messages up to Sync).
//  - Table changes are applied when the client message is rewritten and undone (newest first) when the
//    server fails or skips the message. A client that pipelines past a Sync messages that depend on a
//    statement created or closed before an error in the earlier segment may see a different outcome than
//    on a direct connection (PgBouncer has the same limit, and closes such clients instead).
//  - A Parse of a name the client already has is sent to the server as a Parse of a name the server
//    already has, so the server fails it and skips to Sync exactly as it would have; its error is replaced
//    by poolguard's own 42P05 naming the client's statement. A Bind/Describe of a name of the form
//    "PGG_<digits>" the client does not own is answered with poolguard's 26000 the same way, so a client
//    can never reach another client's statement; Close of such a name is answered with CloseComplete.
//  - Statements created or dropped by SQL (PREPARE, DEALLOCATE name) are not tracked: they pass through by
//    name and work inside one transaction only. The client's table is cleared when its DISCARD ALL or
//    DEALLOCATE ALL completes.
//  - The client table is not bounded (as in PostgreSQL and PgBouncer); the server cache is.

#include <cstddef>
#include <cstdint>
#include <functional>
#include <list>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "common/error.h"

namespace poolguard::protocol::pg {

inline constexpr std::string_view kServerStatementPrefix = "PGG_";

// True for "PGG_<digits>", the form of the names poolguard gives statements on servers.
bool is_server_statement_name(std::string_view name);

// One statement definition: the Parse body after the statement name (query C string, int16 parameter
// count, that many int32 type OIDs), immutable and shared between the tables that know it.
struct StatementDef {
    std::string body;
    size_t hash = 0;

    // Validates `rest` (the Parse body after the name) and builds a definition; 08P01 when malformed.
    static Result<std::shared_ptr<const StatementDef>> from_parse_rest(std::string_view rest);

    std::string_view query() const;
    uint16_t param_count() const;
    bool same_as(const StatementDef& o) const { return this == &o || (hash == o.hash && body == o.body); }
};
using StatementPtr = std::shared_ptr<const StatementDef>;

// The named statements of one client: its name -> definition. Unnamed statements are never tracked.
class ClientStatements {
  public:
    // The definition named `name`, or nullptr. The pointer stays valid until the table changes.
    const StatementPtr* find(std::string_view name) const;
    // Adds `name`; false (nothing changed) if `name` is empty or already present.
    bool on_parse(std::string_view name, StatementPtr def);
    // Removes `name`; returns its definition (nullptr if it was absent).
    StatementPtr close(std::string_view name);
    void clear() { map_.clear(); }
    size_t size() const { return map_.size(); }

  private:
    struct NameHash {
        using is_transparent = void;
        size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
    };
    std::unordered_map<std::string, StatementPtr, NameHash, std::equal_to<>> map_;
};

// The statements prepared on one server connection: an LRU cache, definition content -> server name,
// holding at most `capacity` entries (max_prepared_statements).
class ServerStatements {
  public:
    struct Cached {
        StatementPtr def;
        std::string name;
    };

    explicit ServerStatements(size_t capacity) : capacity_(capacity == 0 ? 1 : capacity) {}
    ServerStatements(const ServerStatements&) = delete;
    ServerStatements& operator=(const ServerStatements&) = delete;

    // The entry for a definition with this content, marked most recently used; nullptr if absent.
    const Cached* find(const StatementDef& def);
    // Registers `def` (absent) under a fresh name. Least recently used entries beyond capacity are removed
    // and their names appended to `evicted`: the caller must send a Close for each.
    const Cached& insert(StatementPtr def, std::vector<std::string>& evicted);
    // Undoes insert() (the server failed or skipped the Parse): `name` never existed on the server.
    void forget(const StatementDef& def, std::string_view name);
    // A statement the server still has but the cache no longer tracks (its Close was skipped): closed later.
    void close_later(std::string name) { pending_closes_.push_back(std::move(name)); }
    bool has_pending_closes() const { return !pending_closes_.empty(); }
    const std::vector<std::string>& pending_closes() const { return pending_closes_; }
    std::vector<std::string> take_pending_closes() { return std::exchange(pending_closes_, {}); }
    // The server dropped every statement (DISCARD ALL, DEALLOCATE ALL, reset). Names are not reused.
    void clear();

    size_t size() const { return lru_.size(); }
    size_t capacity() const { return capacity_; }
    // Server names, most recently used first (admin views and tests).
    std::vector<std::string> names() const;

  private:
    struct DefHash {
        size_t operator()(const StatementDef* d) const noexcept { return d->hash; }
    };
    struct DefEq {
        bool operator()(const StatementDef* a, const StatementDef* b) const noexcept {
            return a->same_as(*b);
        }
    };
    using Lru = std::list<Cached>;  // most recently used first

    size_t capacity_;
    uint64_t next_id_ = 1;
    Lru lru_;
    // Keyed by the definition a node of lru_ owns: erase an entry before its node, never after.
    std::unordered_map<const StatementDef*, Lru::iterator, DefHash, DefEq> index_;
    std::vector<std::string> pending_closes_;
};

// ---- the response queue of one server connection ----

// The client-visible request (or injected message) a response belongs to.
enum class RequestKind : uint8_t {
    kParse,
    kBind,
    kClose,
    kDescribeStatement,
    kDescribePortal,
    kExecute,
    kSync,
    kQuery,
    kFunctionCall,
};

enum class ResponseAction : uint8_t {
    kForward,  // the client sent this request: forward its response
    kSwallow,  // poolguard injected this message: drop the message that completes it
    kFake,     // poolguard answers this request itself: emit `bytes` when it reaches the head
};

// What a request changed in the tables, undone when the server fails or skips it.
enum class ServerEffect : uint8_t {
    kNone,
    kParse,  // registered server_def as server_name: forget it on failure
    kClose,  // evicted server_name: if skipped the server still has it, so close it later
    kProbe,  // Parse sent to fail on the existing server_name (server_def): if it succeeds, the cache was
             // wrong
};
enum class ClientEffect : uint8_t {
    kNone,
    kParse,  // added client_name -> client_def: remove it on failure
    kClose,  // removed client_name (client_def): put it back on failure
};

struct PendingResponse {
    RequestKind kind = RequestKind::kSync;
    ResponseAction action = ResponseAction::kForward;
    bool expect_error =
        false;  // the server must fail it; `bytes` is the ErrorResponse the client sees instead
    ServerEffect server_effect = ServerEffect::kNone;
    ClientEffect client_effect = ClientEffect::kNone;
    std::string bytes;  // kFake: the complete response; expect_error: the replacement ErrorResponse
    StatementPtr server_def;
    std::string server_name;
    StatementPtr client_def;
    std::string client_name;
};

enum class Disposition : uint8_t {
    kForward,    // send this message to the client
    kDrop,       // do not send it (it answers an injected message, or its replacement is emitted instead)
    kOutOfSync,  // the server answered something that was not asked: close the server connection
};

// One entry per request sent to the server (or answered by poolguard) whose response has not completed, in
// the order of the requests. Lives with the server connection; a client may unlink only once it is empty.
class ResponseQueue {
  public:
    // Appends a request. While the server is skipping until Sync (an error arrived and no Sync has been
    // queued since) any request but Sync is skipped by the server: it is discarded at once and its effects
    // undone.
    void push(PendingResponse r, ServerStatements& server, ClientStatements* client);

    // Appends to `out` the responses poolguard must emit now: replacement errors, then the bytes of kFake
    // entries at the head (popped). Call after every push batch and after every server message.
    void append_ready_fakes(std::string& out);
    std::string take_ready_fakes() {
        std::string out;
        append_ready_fakes(out);
        return out;
    }

    // Accounts for one server message (call once per message, at its first byte). `body` is needed only for
    // 'C' (CommandComplete, to see DISCARD ALL / DEALLOCATE ALL); pass {} otherwise. `client` is the linked
    // client's table, or nullptr when it is gone. Precondition: append_ready_fakes ran since the last change.
    Disposition on_server_message(char type, std::string_view body, ServerStatements& server,
                                  ClientStatements* client);

    bool empty() const { return size_ == 0 && staged_.empty(); }
    size_t size() const { return size_; }
    // True when the server is skipping until Sync and the client has not sent that Sync yet.
    bool skipping() const { return skipping_; }
    // Drops everything (the server connection is gone).
    void clear();

  private:
    PendingResponse& at(size_t i) { return slots_[(head_ + i) % slots_.size()]; }
    PendingResponse& front() { return at(0); }
    void pop_front();
    void undo(PendingResponse& r, ServerStatements& server, ClientStatements* client);
    void discard_until_sync(ServerStatements& server, ClientStatements* client);

    std::vector<PendingResponse> slots_;  // ring buffer, reused: no allocation per request once warm
    size_t head_ = 0;
    size_t size_ = 0;
    bool skipping_ = false;
    std::string staged_;  // output produced while handling a server message, emitted by append_ready_fakes
};

// ---- the rewriter ----

struct PreparedStats {
    uint64_t client_parses = 0;  // named Parse messages from clients
    uint64_t server_parses = 0;  // Parse messages of named statements sent to servers (forwarded or injected)
    uint64_t binds = 0;          // Bind messages of named statements
    uint64_t evictions = 0;      // Close messages injected to keep server caches bounded
};

// Rewrites frontend messages for the server a client is linked to. Stateless apart from counters: one per
// client (or per thread) is fine.
class Rewriter {
  public:
    // Messages that must reach on_client_message whole; any other type may be forwarded unchanged by the
    // relay itself (even streamed) after on_passthrough().
    static bool must_inspect(char type) { return type == 'P' || type == 'B' || type == 'D' || type == 'C'; }

    // One complete frontend message (`body` without type and length): appends to `to_server` what the server
    // must receive (possibly nothing) and queues the expected responses. Errors (08P01) for malformed
    // messages; then nothing was appended or queued and the client must be disconnected.
    Status on_client_message(char type, std::string_view body, ClientStatements& client,
                             ServerStatements& server, ResponseQueue& queue, std::string& to_server);
    // Queues the response of a message of a type !must_inspect() the relay forwards unchanged.
    void on_passthrough(char type, ClientStatements& client, ServerStatements& server, ResponseQueue& queue);

    const PreparedStats& stats() const { return stats_; }

  private:
    Status on_parse(std::string_view body, ClientStatements& client, ServerStatements& server,
                    ResponseQueue& queue, std::string& out);
    Status on_bind(std::string_view body, ClientStatements& client, ServerStatements& server,
                   ResponseQueue& queue, std::string& out);
    Status on_describe(std::string_view body, ClientStatements& client, ServerStatements& server,
                       ResponseQueue& queue, std::string& out);
    Status on_close(std::string_view body, ClientStatements& client, ServerStatements& server,
                    ResponseQueue& queue, std::string& out);
    // The server name of `def`, preparing it first (injected Parse, swallowed) when the server lacks it.
    // `holder` keeps the name when it was just created.
    std::string_view ensure(const StatementPtr& def, ClientStatements& client, ServerStatements& server,
                            ResponseQueue& queue, std::string& out, std::string& holder);
    // Registers `def` on the server: sends due Closes, then Parse(new name, def), and queues `parse` (whose
    // kind/action the caller chose) after the Closes' entries. Returns the new name.
    std::string prepare_on_server(const StatementPtr& def, PendingResponse parse, ClientStatements& client,
                                  ServerStatements& server, ResponseQueue& queue, std::string& out);

    PreparedStats stats_;
};

}  // namespace poolguard::protocol::pg
