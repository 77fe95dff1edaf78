// Owns named prepared statements under transaction pooling, sans I/O: statement tables, response queue,
// rewriting of Parse/Bind/Describe/Close (see the header for the protocol invariants relied on).
#include "protocol/pg/prepared_statements.h"

#include <algorithm>
#include <iterator>

#include "protocol/pg/messages.h"
#include "protocol/pg/wire.h"

namespace poolguard::protocol::pg {

namespace {

// A name the server cannot have: poolguard never creates it (not "PGG_<digits>").
constexpr std::string_view kNoSuchServerStatement = "PGG_?";

Status malformed(const char* what) {
    return fail(std::string("invalid ") + what + " message format", sqlstate::kProtocolViolation);
}

void append_message(std::string& out, char type, std::string_view body) {
    MessageBuilder m(out, type);
    m.bytes(body);
    m.finish();
}

PendingResponse request(RequestKind kind, ResponseAction action = ResponseAction::kForward) {
    PendingResponse r;
    r.kind = kind;
    r.action = action;
    return r;
}

// An empty-bodied backend message (ParseComplete '1', CloseComplete '3').
std::string empty_message(char type) {
    std::string out;
    MessageBuilder m(out, type);
    m.finish();
    return out;
}

std::string statement_error(std::string_view sqlstate, std::string_view name, std::string_view what) {
    std::string out;
    std::string message = "prepared statement \"";
    message.append(name).append("\" ").append(what);
    append_error(out, "ERROR", sqlstate, message);
    return out;
}

// Message types that complete some request (see the header, invariant 1).
bool is_completion(char type) {
    switch (type) {
        case '1':
        case '2':
        case '3':
        case 't':
        case 'T':
        case 'n':
        case 'C':
        case 'I':
        case 's':
        case 'Z':
            return true;
        default:
            return false;
    }
}

bool completes(RequestKind kind, char type) {
    switch (kind) {
        case RequestKind::kParse:
            return type == '1';
        case RequestKind::kBind:
            return type == '2';
        case RequestKind::kClose:
            return type == '3';
        case RequestKind::kDescribeStatement:
        case RequestKind::kDescribePortal:
            return type == 'T' || type == 'n';
        case RequestKind::kExecute:
            return type == 'C' || type == 'I' || type == 's';
        case RequestKind::kSync:
        case RequestKind::kQuery:
        case RequestKind::kFunctionCall:
            return type == 'Z';
    }
    return false;
}

bool is_simple(RequestKind kind) {
    return kind == RequestKind::kQuery || kind == RequestKind::kFunctionCall;
}

// A message that does not complete the head but cannot legitimately arrive while it is the head.
bool is_out_of_order(RequestKind kind, char type) {
    if (is_simple(kind)) {
        return type == '1' || type == '2' || type == '3' || type == 't' || type == 'n' || type == 's';
    }
    if (type == 't') return kind != RequestKind::kDescribeStatement;
    return is_completion(type);
}

}  // namespace

bool is_server_statement_name(std::string_view name) {
    if (!name.starts_with(kServerStatementPrefix) || name.size() == kServerStatementPrefix.size())
        return false;
    return std::all_of(name.begin() + kServerStatementPrefix.size(), name.end(),
                       [](char c) { return c >= '0' && c <= '9'; });
}

// ---- StatementDef ----

Result<StatementPtr> StatementDef::from_parse_rest(std::string_view rest) {
    FieldReader r(rest);
    const auto query = r.cstr();
    const auto count = r.i16();
    if (!query || !count || !r.bytes(size_t{*count} * 4) || !r.at_end()) {
        return std::unexpected(malformed("Parse").error());
    }
    auto def = std::make_shared<StatementDef>();
    def->body.assign(rest);
    def->hash = std::hash<std::string_view>{}(rest);
    return def;
}

std::string_view StatementDef::query() const {
    const auto end = body.find('\0');
    return std::string_view(body).substr(0, end == std::string::npos ? body.size() : end);
}

uint16_t StatementDef::param_count() const {
    const size_t at = query().size() + 1;
    return body.size() >= at + 2 ? read_be16(body.data() + at) : 0;
}

// ---- ClientStatements ----

const StatementPtr* ClientStatements::find(std::string_view name) const {
    const auto it = map_.find(name);
    return it == map_.end() ? nullptr : &it->second;
}

bool ClientStatements::on_parse(std::string_view name, StatementPtr def) {
    if (name.empty() || !def) return false;
    return map_.try_emplace(std::string(name), std::move(def)).second;
}

StatementPtr ClientStatements::close(std::string_view name) {
    const auto it = map_.find(name);
    if (it == map_.end()) return nullptr;
    StatementPtr def = std::move(it->second);
    map_.erase(it);
    return def;
}

// ---- ServerStatements ----

const ServerStatements::Cached* ServerStatements::find(const StatementDef& def) {
    const auto it = index_.find(&def);
    if (it == index_.end()) return nullptr;
    if (it->second != lru_.begin()) lru_.splice(lru_.begin(), lru_, it->second);
    return &*it->second;
}

const ServerStatements::Cached& ServerStatements::insert(StatementPtr def,
                                                         std::vector<std::string>& evicted) {
    if (const auto it = index_.find(def.get()); it != index_.end()) {
        // Not expected (callers look first); keep the table consistent: the old name becomes garbage.
        const auto node = it->second;
        index_.erase(it);  // before the node: see forget()
        close_later(std::move(node->name));
        lru_.erase(node);
    }
    std::string name(kServerStatementPrefix);
    name += std::to_string(next_id_++);
    lru_.push_front(Cached{std::move(def), std::move(name)});
    index_.emplace(lru_.front().def.get(), lru_.begin());
    while (lru_.size() > capacity_) {
        const auto last = std::prev(lru_.end());
        index_.erase(last->def.get());
        evicted.push_back(std::move(last->name));
        lru_.erase(last);
    }
    return lru_.front();
}

void ServerStatements::forget(const StatementDef& def, std::string_view name) {
    const auto it = index_.find(&def);
    if (it != index_.end() && it->second->name == name) {
        // The index entry goes first: its key points into the node's definition, which `def` (only equal to
        // it) may not keep alive, and erasing an entry hashes its key again (libstdc++ caches no hash here).
        const auto node = it->second;
        index_.erase(it);
        lru_.erase(node);
        return;
    }
    // Evicted meanwhile, and the eviction's Close skipped too (undone first, newest first): the server never
    // had this name, so there is nothing to close later.
    std::erase(pending_closes_, name);
}

void ServerStatements::clear() {
    index_.clear();
    lru_.clear();
    pending_closes_.clear();
}

std::vector<std::string> ServerStatements::names() const {
    std::vector<std::string> out;
    out.reserve(lru_.size());
    for (const auto& c : lru_)
        out.push_back(c.name);
    return out;
}

// ---- ResponseQueue ----

void ResponseQueue::push(PendingResponse r, ServerStatements& server, ClientStatements* client) {
    if (skipping_) {
        if (r.kind != RequestKind::kSync) {
            undo(r, server, client);  // the server will read and ignore it: no response, no effect
            return;
        }
        skipping_ = false;
    }
    if (size_ == slots_.size()) {
        std::vector<PendingResponse> grown(std::max<size_t>(8, slots_.size() * 2));
        for (size_t i = 0; i < size_; ++i)
            grown[i] = std::move(at(i));
        slots_ = std::move(grown);
        head_ = 0;
    }
    slots_[(head_ + size_) % slots_.size()] = std::move(r);
    ++size_;
}

void ResponseQueue::pop_front() {
    front() = PendingResponse{};  // keeps the slot's string buffers for reuse
    head_ = (head_ + 1) % slots_.size();
    --size_;
}

void ResponseQueue::append_ready_fakes(std::string& out) {
    if (!staged_.empty()) {
        out += staged_;
        staged_.clear();
    }
    while (size_ > 0 && front().action == ResponseAction::kFake) {
        out += front().bytes;
        pop_front();
    }
}

void ResponseQueue::undo(PendingResponse& r, ServerStatements& server, ClientStatements* client) {
    switch (r.server_effect) {
        case ServerEffect::kParse:
            if (r.server_def) server.forget(*r.server_def, r.server_name);
            break;
        case ServerEffect::kClose:
            server.close_later(std::move(r.server_name));
            break;
        case ServerEffect::kProbe:
        case ServerEffect::kNone:
            break;
    }
    if (client == nullptr) return;
    switch (r.client_effect) {
        case ClientEffect::kParse: {
            const StatementPtr* now = client->find(r.client_name);
            if (now != nullptr && now->get() == r.client_def.get()) client->close(r.client_name);
            break;
        }
        case ClientEffect::kClose:
            if (client->find(r.client_name) == nullptr)
                client->on_parse(r.client_name, std::move(r.client_def));
            break;
        case ClientEffect::kNone:
            break;
    }
}

void ResponseQueue::discard_until_sync(ServerStatements& server, ClientStatements* client) {
    size_t n = 0;
    while (n < size_ && at(n).kind != RequestKind::kSync)
        ++n;
    if (n == size_) skipping_ = true;  // the Sync is still to come from the client
    for (size_t i = n; i-- > 0;)
        undo(at(i), server, client);  // newest first, so that a name's earlier state is what remains
    for (size_t i = 0; i < n; ++i)
        pop_front();
}

Disposition ResponseQueue::on_server_message(char type, std::string_view body, ServerStatements& server,
                                             ClientStatements* client) {
    // Fakes at the head should already have been emitted; if not, keep them (late) rather than lose them.
    while (size_ > 0 && front().action == ResponseAction::kFake) {
        staged_ += front().bytes;
        pop_front();
    }
    if (type == 'C') {
        std::string_view tag = body;
        if (!tag.empty() && tag.back() == '\0') tag.remove_suffix(1);
        if (tag == "DISCARD ALL" || tag == "DEALLOCATE ALL") {
            server.clear();
            if (client != nullptr) client->clear();
        }
    }
    if (size_ == 0) return is_completion(type) ? Disposition::kOutOfSync : Disposition::kForward;

    PendingResponse& head = front();
    if (type == 'E') {
        if (is_simple(head.kind) || head.kind == RequestKind::kSync) return Disposition::kForward;
        // An extended message failed: the server skips everything up to the next Sync.
        Disposition d = Disposition::kForward;
        if (head.expect_error) {
            staged_ += head.bytes;
            d = Disposition::kDrop;
        }
        discard_until_sync(server, client);
        return d;
    }
    if (completes(head.kind, type)) {
        const Disposition d =
            head.action == ResponseAction::kSwallow ? Disposition::kDrop : Disposition::kForward;
        if (head.server_effect == ServerEffect::kProbe && head.server_def) {
            // The Parse meant to fail succeeded: the server did not have server_name, and now has it with
            // another definition. Stop using that name.
            server.forget(*head.server_def, head.server_name);
            server.close_later(std::move(head.server_name));
        }
        pop_front();
        return d;
    }
    return is_out_of_order(head.kind, type) ? Disposition::kOutOfSync : Disposition::kForward;
}

void ResponseQueue::clear() {
    slots_.clear();
    head_ = 0;
    size_ = 0;
    skipping_ = false;
    staged_.clear();
}

// ---- Rewriter ----

Status Rewriter::on_client_message(char type, std::string_view body, ClientStatements& client,
                                   ServerStatements& server, ResponseQueue& queue, std::string& to_server) {
    switch (type) {
        case 'P':
            return on_parse(body, client, server, queue, to_server);
        case 'B':
            return on_bind(body, client, server, queue, to_server);
        case 'D':
            return on_describe(body, client, server, queue, to_server);
        case 'C':
            return on_close(body, client, server, queue, to_server);
        default:
            append_message(to_server, type, body);
            on_passthrough(type, client, server, queue);
            return {};
    }
}

void Rewriter::on_passthrough(char type, ClientStatements& client, ServerStatements& server,
                              ResponseQueue& queue) {
    RequestKind kind;
    switch (type) {
        case 'E':
            kind = RequestKind::kExecute;
            break;
        case 'S':
            kind = RequestKind::kSync;
            break;
        case 'Q':
            kind = RequestKind::kQuery;
            break;
        case 'F':
            kind = RequestKind::kFunctionCall;
            break;
        case 'P':
            kind = RequestKind::kParse;
            break;
        case 'B':
            kind = RequestKind::kBind;
            break;
        case 'C':
            kind = RequestKind::kClose;
            break;
        case 'D':
            kind = RequestKind::kDescribeStatement;
            break;  // accepts 't' too
        default:
            return;  // Flush, CopyData, CopyDone, CopyFail: no response of their own
    }
    queue.push(request(kind), server, &client);
}

std::string Rewriter::prepare_on_server(const StatementPtr& def, PendingResponse parse,
                                        ClientStatements& client, ServerStatements& server,
                                        ResponseQueue& queue, std::string& out) {
    const auto inject_close = [&](std::string name) {
        MessageBuilder m(out, 'C');
        m.byte('S').cstr(name);
        m.finish();
        PendingResponse c = request(RequestKind::kClose, ResponseAction::kSwallow);
        c.server_effect = ServerEffect::kClose;
        c.server_name = std::move(name);
        queue.push(std::move(c), server, &client);
    };
    if (server.has_pending_closes()) {
        for (auto& name : server.take_pending_closes())
            inject_close(std::move(name));
    }
    std::vector<std::string> evicted;
    std::string name = server.insert(def, evicted).name;
    for (auto& victim : evicted) {
        ++stats_.evictions;
        inject_close(std::move(victim));
    }
    MessageBuilder m(out, 'P');
    m.cstr(name).bytes(def->body);
    m.finish();
    ++stats_.server_parses;
    parse.kind = RequestKind::kParse;
    parse.server_effect = ServerEffect::kParse;
    parse.server_def = def;
    parse.server_name = name;
    queue.push(std::move(parse), server, &client);
    return name;
}

std::string_view Rewriter::ensure(const StatementPtr& def, ClientStatements& client, ServerStatements& server,
                                  ResponseQueue& queue, std::string& out, std::string& holder) {
    if (const auto* cached = server.find(*def)) return cached->name;
    holder = prepare_on_server(def, request(RequestKind::kParse, ResponseAction::kSwallow), client, server,
                               queue, out);
    return holder;
}

Status Rewriter::on_parse(std::string_view body, ClientStatements& client, ServerStatements& server,
                          ResponseQueue& queue, std::string& out) {
    FieldReader r(body);
    const auto name = r.cstr();
    if (!name) return malformed("Parse");
    if (name->empty()) {
        append_message(out, 'P', body);
        queue.push(request(RequestKind::kParse), server, &client);
        return {};
    }
    auto def = StatementDef::from_parse_rest(r.rest());
    if (!def) return std::unexpected(std::move(def.error()));
    ++stats_.client_parses;

    if (const StatementPtr* existing = client.find(*name)) {
        // PostgreSQL fails this Parse (42P05) and skips to Sync. Make the server do exactly that by parsing
        // under a name it has, then show the client the error about its own name.
        const StatementPtr old = *existing;
        std::string holder;
        const std::string_view target = ensure(old, client, server, queue, out, holder);
        MessageBuilder m(out, 'P');
        m.cstr(target).bytes((*def)->body);
        m.finish();
        PendingResponse p = request(RequestKind::kParse);
        p.expect_error = true;
        p.bytes = statement_error("42P05", *name, "already exists");
        p.server_effect = ServerEffect::kProbe;
        p.server_def = old;
        p.server_name = target;
        queue.push(std::move(p), server, &client);
        return {};
    }

    PendingResponse p = request(RequestKind::kParse);
    p.client_effect = ClientEffect::kParse;
    p.client_name = *name;
    if (const auto* cached = server.find(**def)) {
        // Already prepared here: answer it ourselves, sharing the server's copy (cheaper lookups later).
        p.client_def = cached->def;
        client.on_parse(*name, p.client_def);
        p.action = ResponseAction::kFake;
        p.bytes = empty_message('1');
        queue.push(std::move(p), server, &client);
        return {};
    }
    p.client_def = *def;
    client.on_parse(*name, *def);
    prepare_on_server(*def, std::move(p), client, server, queue, out);
    return {};
}

Status Rewriter::on_bind(std::string_view body, ClientStatements& client, ServerStatements& server,
                         ResponseQueue& queue, std::string& out) {
    FieldReader r(body);
    const auto portal = r.cstr();
    const auto stmt = r.cstr();
    if (!portal || !stmt) return malformed("Bind");
    if (!stmt->empty()) {
        ++stats_.binds;
        if (const StatementPtr* def = client.find(*stmt)) {
            std::string holder;
            const std::string_view target = ensure(*def, client, server, queue, out, holder);
            MessageBuilder m(out, 'B');
            m.cstr(*portal).cstr(target).bytes(r.rest());
            m.finish();
            queue.push(request(RequestKind::kBind), server, &client);
            return {};
        }
        if (is_server_statement_name(*stmt)) {
            // Never let a client reach a statement poolguard prepared for someone else.
            MessageBuilder m(out, 'B');
            m.cstr(*portal).cstr(kNoSuchServerStatement).bytes(r.rest());
            m.finish();
            PendingResponse p = request(RequestKind::kBind);
            p.expect_error = true;
            p.bytes = statement_error("26000", *stmt, "does not exist");
            queue.push(std::move(p), server, &client);
            return {};
        }
    }
    append_message(out, 'B', body);
    queue.push(request(RequestKind::kBind), server, &client);
    return {};
}

Status Rewriter::on_describe(std::string_view body, ClientStatements& client, ServerStatements& server,
                             ResponseQueue& queue, std::string& out) {
    FieldReader r(body);
    const auto what = r.byte();
    const auto name = r.cstr();
    if (!what || !name || !r.at_end() || (*what != 'S' && *what != 'P')) return malformed("Describe");
    if (*what == 'S' && !name->empty()) {
        if (const StatementPtr* def = client.find(*name)) {
            std::string holder;
            const std::string_view target = ensure(*def, client, server, queue, out, holder);
            MessageBuilder m(out, 'D');
            m.byte('S').cstr(target);
            m.finish();
            queue.push(request(RequestKind::kDescribeStatement), server, &client);
            return {};
        }
        if (is_server_statement_name(*name)) {
            MessageBuilder m(out, 'D');
            m.byte('S').cstr(kNoSuchServerStatement);
            m.finish();
            PendingResponse p = request(RequestKind::kDescribeStatement);
            p.expect_error = true;
            p.bytes = statement_error("26000", *name, "does not exist");
            queue.push(std::move(p), server, &client);
            return {};
        }
    }
    append_message(out, 'D', body);
    queue.push(request(*what == 'S' ? RequestKind::kDescribeStatement : RequestKind::kDescribePortal), server,
               &client);
    return {};
}

Status Rewriter::on_close(std::string_view body, ClientStatements& client, ServerStatements& server,
                          ResponseQueue& queue, std::string& out) {
    FieldReader r(body);
    const auto what = r.byte();
    const auto name = r.cstr();
    if (!what || !name || !r.at_end() || (*what != 'S' && *what != 'P')) return malformed("Close");
    if (*what == 'S' && !name->empty()) {
        // The server keeps its copy (shared, bounded by the cache); only the client's name goes away.
        StatementPtr removed = client.close(*name);
        if (removed || is_server_statement_name(*name)) {
            PendingResponse p = request(RequestKind::kClose, ResponseAction::kFake);
            p.bytes = empty_message('3');
            if (removed) {
                p.client_effect = ClientEffect::kClose;
                p.client_name = *name;
                p.client_def = std::move(removed);
            }
            queue.push(std::move(p), server, &client);
            return {};
        }
    }
    append_message(out, 'C', body);
    queue.push(request(RequestKind::kClose), server, &client);
    return {};
}

}  // namespace poolguard::protocol::pg
