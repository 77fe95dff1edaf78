// Owns the per-database and per-user client connection counts (see client_caps.h).
#include "session/client_caps.h"

namespace poolguard::session {

namespace {
int count_of(const std::unordered_map<std::string, int>& map, const std::string& key) {
    auto it = map.find(key);
    return it == map.end() ? 0 : it->second;
}
void decrement(std::unordered_map<std::string, int>& map, const std::string& key) {
    auto it = map.find(key);
    if (it == map.end()) return;
    if (--it->second <= 0) map.erase(it);
}
}  // namespace

ClientCaps::Slot& ClientCaps::Slot::operator=(Slot&& other) noexcept {
    if (this != &other) {
        release();
        counts_ = std::move(other.counts_);
        database_ = std::move(other.database_);
        user_ = std::move(other.user_);
        other.counts_.reset();
    }
    return *this;
}

void ClientCaps::Slot::release() {
    if (!counts_) return;
    decrement(counts_->by_database, database_);
    decrement(counts_->by_user, user_);
    counts_.reset();
}

ClientCaps::Slot ClientCaps::try_acquire(const std::string& database, int database_limit,
                                         const std::string& user, int user_limit, std::string& refused_by) {
    refused_by.clear();
    if (database_limit > 0 && count_of(counts_->by_database, database) >= database_limit) {
        refused_by = "max_db_client_connections";
        return {};
    }
    if (user_limit > 0 && count_of(counts_->by_user, user) >= user_limit) {
        refused_by = "max_user_client_connections";
        return {};
    }
    Slot slot;
    slot.counts_ = counts_;
    slot.database_ = database;
    slot.user_ = user;
    ++counts_->by_database[database];
    ++counts_->by_user[user];
    return slot;
}

int ClientCaps::database_count(const std::string& database) const {
    return count_of(counts_->by_database, database);
}

int ClientCaps::user_count(const std::string& user) const {
    return count_of(counts_->by_user, user);
}

}  // namespace poolguard::session
