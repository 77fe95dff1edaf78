// Owns PriorityWaitQueue: the sans-I/O core of priority classes in a pool. One FIFO per class, the number
// of servers each class holds, and its cap (max_share of the pool). It decides which waiter a freed server
// goes to (lowest priority number first, oldest first among equal priorities, never a class at its cap) and
// which waiter is refused first (the newest of the lowest priority). Every choice is O(classes).
#pragma once

#include <algorithm>
#include <climits>
#include <cstdint>
#include <list>
#include <vector>

namespace poolguard::pool {

// A class's cap in servers: max_share % of pool_size, rounded up, at least 1; 100 % means no cap (the
// reserve pool stays usable).
inline int class_cap(int max_share, int pool_size) {
    if (max_share >= 100) return INT_MAX;
    const long cap = (static_cast<long>(max_share) * std::max(pool_size, 0) + 99) / 100;
    return static_cast<int>(std::max(cap, 1L));
}

template <class T>
class PriorityWaitQueue {
    struct Entry {
        T* item;
        uint64_t seq;  // arrival order across classes
    };

  public:
    using Handle = typename std::list<Entry>::iterator;

    PriorityWaitQueue() { configure({0}, {INT_MAX}); }

    // One priority and cap per class. Classes only ever grow (waiters of a class removed by a reload stay
    // queued in it; it keeps the last priority and has no cap).
    void configure(const std::vector<int>& priorities, const std::vector<int>& caps) {
        if (classes_.size() < priorities.size()) classes_.resize(priorities.size());
        for (size_t i = 0; i < classes_.size(); ++i) {
            classes_[i].priority = i < priorities.size() ? priorities[i] : classes_[i].priority;
            classes_[i].cap = i < caps.size() ? caps[i] : INT_MAX;
        }
    }

    int clamp(int cls) const { return cls >= 0 && cls < static_cast<int>(classes_.size()) ? cls : 0; }
    size_t class_count() const { return classes_.size(); }

    Handle push(int cls, T* item) {
        auto& c = classes_[clamp(cls)];
        ++size_;
        if (spare_.empty()) return c.waiters.insert(c.waiters.end(), Entry{item, ++seq_});
        // A node of an earlier waiter: no allocation per wait (one per transaction under load).
        auto node = spare_.begin();
        *node = Entry{item, ++seq_};
        c.waiters.splice(c.waiters.end(), spare_, node);
        return node;
    }
    void erase(int cls, Handle h) {
        recycle(classes_[clamp(cls)].waiters, h);
        --size_;
    }

    size_t size() const { return size_; }
    bool empty() const { return size_ == 0; }
    size_t waiting(int cls) const { return classes_[clamp(cls)].waiters.size(); }

    // Server accounting: a class holds a server from hand-out until its client lets go.
    void hold(int cls) { ++classes_[clamp(cls)].held; }
    void unhold(int cls) {
        auto& c = classes_[clamp(cls)];
        if (c.held > 0) --c.held;
    }
    int held(int cls) const { return classes_[clamp(cls)].held; }
    int cap(int cls) const { return classes_[clamp(cls)].cap; }
    bool at_cap(int cls) const {
        const auto& c = classes_[clamp(cls)];
        return c.held >= c.cap;
    }

    // The class whose waiter gets the next server, or -1 when no waiter may take one.
    int next_class() const {
        int best = -1;
        for (int i = 0; i < static_cast<int>(classes_.size()); ++i) {
            const auto& c = classes_[i];
            if (c.waiters.empty() || c.held >= c.cap) continue;
            if (best < 0 || c.priority < classes_[best].priority ||
                (c.priority == classes_[best].priority &&
                 c.waiters.front().seq < classes_[best].waiters.front().seq))
                best = i;
        }
        return best;
    }
    bool has_eligible() const { return next_class() >= 0; }

    // Takes the next waiter to serve out of the queue (nullptr when none may take a server).
    T* pop_next(int* cls_out = nullptr) {
        const int cls = next_class();
        if (cls < 0) return nullptr;
        return pop_front_of(cls, cls_out);
    }

    // Takes the waiter to refuse first: the newest of the lowest priority (largest number) that has any.
    T* pop_lowest(int* cls_out = nullptr) {
        int worst = -1;
        for (int i = 0; i < static_cast<int>(classes_.size()); ++i) {
            const auto& c = classes_[i];
            if (c.waiters.empty()) continue;
            if (worst < 0 || c.priority > classes_[worst].priority ||
                (c.priority == classes_[worst].priority &&
                 c.waiters.back().seq > classes_[worst].waiters.back().seq))
                worst = i;
        }
        if (worst < 0) return nullptr;
        auto& c = classes_[worst];
        T* item = c.waiters.back().item;
        recycle(c.waiters, std::prev(c.waiters.end()));
        --size_;
        if (cls_out) *cls_out = worst;
        return item;
    }

    // Decides who is refused when waits time out, lowest priority first. Each waiter whose wait is over
    // (`expired(item)`) is taken out and returned — unless a waiter of a lower priority (larger number)
    // that has not expired is still queued: then the newest of the lowest priority is taken out and
    // returned in its place, and `spare(item)` is called for the expired one, which returns false when it
    // may not wait longer (then it is refused after all and nobody is taken in its place). Expired waiters
    // are handled most important first. O(waiters); meant for a timer that fires once per timeout.
    template <class Expired, class Spare>
    std::vector<T*> take_timed_out(Expired&& expired, Spare&& spare) {
        struct Due {
            int cls;
            Handle at;
        };
        std::vector<Due> due;
        for (int i = 0; i < static_cast<int>(classes_.size()); ++i)
            for (auto it = classes_[i].waiters.begin(); it != classes_[i].waiters.end(); ++it)
                if (expired(it->item)) due.push_back({i, it});
        std::stable_sort(due.begin(), due.end(), [&](const Due& a, const Due& b) {
            const int pa = classes_[a.cls].priority, pb = classes_[b.cls].priority;
            return pa != pb ? pa < pb : a.at->seq < b.at->seq;
        });
        std::vector<T*> refused;
        for (const auto& d : due) {
            const int priority = classes_[d.cls].priority;
            int victim_cls = -1;
            Handle victim{};
            for (int i = 0; i < static_cast<int>(classes_.size()); ++i) {
                auto& c = classes_[i];
                if (c.priority <= priority) continue;
                if (victim_cls >= 0 && c.priority < classes_[victim_cls].priority) continue;
                for (auto it = c.waiters.end(); it != c.waiters.begin();) {
                    --it;
                    if (expired(it->item)) continue;
                    if (victim_cls < 0 || c.priority > classes_[victim_cls].priority ||
                        it->seq > victim->seq) {
                        victim_cls = i;
                        victim = it;
                    }
                    break;  // the newest of this class that has not expired
                }
            }
            T* item = d.at->item;
            if (victim_cls >= 0 && spare(item)) {
                refused.push_back(victim->item);
                recycle(classes_[victim_cls].waiters, victim);
            } else {
                refused.push_back(item);
                recycle(classes_[d.cls].waiters, d.at);
            }
            --size_;
        }
        return refused;
    }

    // Waiters that could take a server now if one were free: per class, up to its remaining share.
    size_t eligible() const {
        size_t n = 0;
        for (const auto& c : classes_) {
            if (c.held >= c.cap) continue;
            const size_t room = c.cap == INT_MAX ? c.waiters.size() : static_cast<size_t>(c.cap - c.held);
            n += std::min(c.waiters.size(), room);
        }
        return n;
    }

    // The front (oldest) waiter of each class: fn(cls, item).
    template <class Fn>
    void for_each_front(Fn&& fn) const {
        for (int i = 0; i < static_cast<int>(classes_.size()); ++i)
            if (!classes_[i].waiters.empty()) fn(i, classes_[i].waiters.front().item);
    }
    // Every waiter; `fn(item)` returns true to take it out of the queue.
    template <class Fn>
    void erase_if(Fn&& fn) {
        for (auto& c : classes_) {
            for (auto it = c.waiters.begin(); it != c.waiters.end();) {
                if (fn(it->item)) {
                    auto next = std::next(it);
                    recycle(c.waiters, it);
                    it = next;
                    --size_;
                } else {
                    ++it;
                }
            }
        }
    }

  private:
    // Takes the node out of `from` and keeps it for the next push (up to kMaxSpare nodes).
    void recycle(std::list<Entry>& from, Handle it) {
        if (spare_.size() < kMaxSpare)
            spare_.splice(spare_.end(), from, it);
        else
            from.erase(it);
    }
    static constexpr size_t kMaxSpare = 4096;

    T* pop_front_of(int cls, int* cls_out) {
        auto& c = classes_[cls];
        T* item = c.waiters.front().item;
        recycle(c.waiters, c.waiters.begin());
        --size_;
        if (cls_out) *cls_out = cls;
        return item;
    }

    struct Class {
        std::list<Entry> waiters;
        int priority = 0;
        int cap = INT_MAX;
        int held = 0;
    };
    std::vector<Class> classes_;
    std::list<Entry> spare_;  // nodes of waiters that left, reused by push
    size_t size_ = 0;
    uint64_t seq_ = 0;
};

}  // namespace poolguard::pool
