// Owns ByteBuffer, the growable read buffer each connection reads into and parses from in place.
#pragma once

#include <algorithm>
#include <cstring>
#include <string_view>
#include <vector>

namespace poolguard::net {

class ByteBuffer {
  public:
    explicit ByteBuffer(size_t capacity = 16 * 1024) : data_(capacity) {}

    std::string_view view() const { return {data_.data() + begin_, end_ - begin_}; }
    size_t size() const { return end_ - begin_; }
    bool empty() const { return begin_ == end_; }
    void consume(size_t n) {
        begin_ += n;
        if (begin_ == end_) begin_ = end_ = 0;
    }
    // Free space at the end, after moving unread bytes to the front when that makes room for `want`.
    char* write_ptr(size_t want = 1) {
        if (data_.size() - end_ < want) {
            if (begin_ > 0) {
                std::memmove(data_.data(), data_.data() + begin_, end_ - begin_);
                end_ -= begin_;
                begin_ = 0;
            }
            if (data_.size() - end_ < want) data_.resize(end_ + want);
        }
        return data_.data() + end_;
    }
    size_t write_space() const { return data_.size() - end_; }
    void commit(size_t n) { end_ += n; }
    // Grows toward room for `total` unread bytes (a message that must arrive whole). Growth is geometric and
    // follows the bytes that actually arrive, so a peer announcing a huge length cannot make us allocate it
    // up front.
    void reserve_unread(size_t total) {
        if (total <= size()) return;
        const size_t step = std::max<size_t>(64 * 1024, data_.size());
        const size_t target = std::min(total, size() + step);
        write_ptr(target - size());
    }
    // Gives memory back after a large message passed.
    void shrink_if_idle(size_t keep) {
        if (empty() && data_.size() > keep) {
            data_.resize(keep);
            data_.shrink_to_fit();
        }
    }

  private:
    std::vector<char> data_;
    size_t begin_ = 0;
    size_t end_ = 0;
};

}  // namespace poolguard::net
