// Owns secure_random(): per-thread batches of OpenSSL CSPRNG output (see secure_random.h).
#include "common/secure_random.h"

#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <pthread.h>

#include <array>
#include <atomic>
#include <cstring>
#include <mutex>

namespace poolguard {

namespace {

constexpr size_t kBatch = 4096;

// Bumped in a forked child: every thread's batch is then stale (parent and child must never hand out the
// same bytes).
std::atomic<uint64_t> fork_generation{0};

struct Batch {
    std::array<uint8_t, kBatch> bytes{};
    size_t next = kBatch;  // bytes[next..] are unused
    uint64_t generation = 0;

    ~Batch() { OPENSSL_cleanse(bytes.data(), bytes.size()); }

    bool refill() {
        next = kBatch;
        if (RAND_bytes(bytes.data(), static_cast<int>(bytes.size())) != 1) return false;
        next = 0;
        generation = fork_generation.load(std::memory_order_relaxed);
        return true;
    }
};

thread_local Batch batch;

}  // namespace

bool secure_random(std::span<uint8_t> out) {
    static std::once_flag atfork_once;
    std::call_once(atfork_once, [] {
        pthread_atfork(nullptr, nullptr, [] { fork_generation.fetch_add(1, std::memory_order_relaxed); });
    });
    if (out.empty()) return true;
    if (out.size() > kBatch) {
        // Not a login's need; straight from the generator.
        if (RAND_bytes(out.data(), static_cast<int>(out.size())) == 1) return true;
        OPENSSL_cleanse(out.data(), out.size());
        return false;
    }
    if (batch.generation != fork_generation.load(std::memory_order_relaxed) ||
        kBatch - batch.next < out.size()) {
        if (!batch.refill()) {
            OPENSSL_cleanse(out.data(), out.size());
            return false;
        }
    }
    std::memcpy(out.data(), batch.bytes.data() + batch.next, out.size());
    OPENSSL_cleanse(batch.bytes.data() + batch.next, out.size());
    batch.next += out.size();
    return true;
}

}  // namespace poolguard
