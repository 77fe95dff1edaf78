// Owns the client connection counts per database and per user behind max_db_client_connections and
// max_user_client_connections (PgBouncer 1.25): a login takes a slot and gives it back when its session
// ends, whatever the way it ends (RAII), so the counts cannot drift.
#pragma once

#include <memory>
#include <string>
#include <unordered_map>

namespace poolguard::session {

class ClientCaps {
    struct Counts {
        std::unordered_map<std::string, int> by_database;
        std::unordered_map<std::string, int> by_user;
    };

  public:
    // One client's place in the counts; released on destruction (movable, not copyable).
    class Slot {
      public:
        Slot() = default;
        Slot(Slot&& other) noexcept { *this = std::move(other); }
        Slot& operator=(Slot&& other) noexcept;
        Slot(const Slot&) = delete;
        Slot& operator=(const Slot&) = delete;
        ~Slot() { release(); }
        void release();
        bool held() const { return counts_ != nullptr; }

      private:
        friend class ClientCaps;
        std::shared_ptr<Counts> counts_;  // shared: a session may outlive the proxy's registry
        std::string database_, user_;
    };

    // Takes a slot for a client of `database` logging in as `user`, unless that would exceed a limit (0 =
    // none): then the slot is not held and `refused_by` names the setting ("max_db_client_connections" or
    // "max_user_client_connections").
    Slot try_acquire(const std::string& database, int database_limit, const std::string& user, int user_limit,
                     std::string& refused_by);

    int database_count(const std::string& database) const;
    int user_count(const std::string& user) const;

  private:
    std::shared_ptr<Counts> counts_ = std::make_shared<Counts>();
};

}  // namespace poolguard::session
