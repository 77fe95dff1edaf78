// Owns ByteBuffer, the growable read buffer each connection reads into and parses from in place.
#pragma once

#include <algorithm>
#include <cstring>
#include <memory>
#include <string_view>

namespace poolguard::net {

// Storage is allocated on first use and never zero-filled: an idle connection's pending read only touches
// the pages that bytes actually arrive in, which keeps the resident memory of idle clients small.
class ByteBuffer {
  public:
    explicit ByteBuffer(size_t capacity = 16 * 1024) : initial_(capacity) {}

    std::string_view view() const { return {data_.get() + begin_, end_ - begin_}; }
    size_t size() const { return end_ - begin_; }
    bool empty() const { return begin_ == end_; }
    void consume(size_t n) {
        begin_ += n;
        if (begin_ == end_) begin_ = end_ = 0;
    }
    // Free space at the end, after moving unread bytes to the front when that makes room for `want`.
    char* write_ptr(size_t want = 1) {
        if (capacity_ - end_ < want) {
            if (begin_ > 0) {
                std::memmove(data_.get(), data_.get() + begin_, end_ - begin_);
                end_ -= begin_;
                begin_ = 0;
            }
            if (capacity_ - end_ < want) reallocate(std::max(end_ + want, initial_));
        }
        return data_.get() + end_;
    }
    size_t write_space() const { return capacity_ - end_; }
    void commit(size_t n) { end_ += n; }
    // Grows toward room for `total` unread bytes (a message that must arrive whole). Growth is geometric and
    // follows the bytes that actually arrive, so a peer announcing a huge length cannot make us allocate it
    // up front.
    void reserve_unread(size_t total) {
        if (total <= size()) return;
        const size_t step = std::max<size_t>(64 * 1024, capacity_);
        const size_t target = std::min(total, size() + step);
        write_ptr(target - size());
    }
    // Gives memory back after a large message passed.
    void shrink_if_idle(size_t keep) {
        if (empty() && capacity_ > keep) reallocate(keep);
    }

  private:
    // New storage of `capacity` bytes holding the unread bytes at its front.
    void reallocate(size_t capacity) {
        std::unique_ptr<char[]> fresh;
        if (capacity > 0) fresh = std::make_unique_for_overwrite<char[]>(capacity);
        if (fresh && end_ > begin_) std::memcpy(fresh.get(), data_.get() + begin_, end_ - begin_);
        end_ -= begin_;
        begin_ = 0;
        data_ = std::move(fresh);
        capacity_ = capacity;
    }

    std::unique_ptr<char[]> data_;
    size_t capacity_ = 0;
    size_t initial_;
    size_t begin_ = 0;
    size_t end_ = 0;
};

}  // namespace poolguard::net
