// Tests the object lifetimes of protocol/pg/prepared_statements (run them under ASan): statement
// definitions freed while a table still reaches them, and replays of the rewriter fuzz target's corpus
// (tests/fuzz/corpus/rewriter, crash inputs included) through the target's own driver.
#include <gtest/gtest.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "../../../fuzz/rewriter_driver.h"
#include "prepared_statements_harness.h"
#include "protocol/pg/prepared_statements.h"

namespace poolguard::protocol::pg {
namespace {
using namespace prepared_testing;

// The server cache holds a definition that only it owns and that is a different object from the client's
// equal one; then the duplicate-name probe succeeds (the cache was stale) and forget() drops that entry.
// forget() used to free the cache's node (and with it the last reference to the definition its index key
// points to) before erasing the index entry, which hashes that key again: heap-use-after-free under ASan.
TEST(PreparedStatementsLifetime, ProbeForgettingTheCachesOwnCopy) {
    Harness h;
    Server s(1);
    Client c;
    h.run(c, s, {parse_msg("s1", "select x"), sync_msg()});  // s1 -> def A, cached as PGG_1 (A)
    h.run(c, s, {parse_msg("s2", "select y"), sync_msg()});  // evicts PGG_1
    h.run(c, s, {parse_msg("s3", "select x"), sync_msg()});  // a new def B equal to A: PGG_3 (B)
    h.run(c, s, {close_msg('S', "s3"), sync_msg()});         // now only the cache owns B
    ASSERT_EQ(s.statements.names(), std::vector<std::string>{"PGG_3"});
    // The client's own SQL (DEALLOCATE "PGG_3") dropped it behind poolguard's back: the cache is stale.
    s.fake.feed(close_msg('S', "PGG_3").bytes());
    s.fake.take_output();

    // Parse of the existing s1 (def A) probes under PGG_3, the cached name of A's content; it succeeds.
    EXPECT_EQ(types(h.run(c, s, {parse_msg("s1", "select two"), sync_msg()})), "1Z");
    EXPECT_EQ(s.statements.size(), 0u);
    EXPECT_EQ(s.statements.pending_closes(), (std::vector<std::string>{"PGG_3"}));
    const std::string got = h.run(c, s, {bind_msg("", "s1"), execute_msg(), sync_msg()});
    EXPECT_EQ(types(got), "2DCZ");
    EXPECT_NE(got.find("select x"), std::string::npos);
    expect_tables_match(s);
}

// The same at the level of ServerStatements: forget() with an equal definition that is not the cached one.
TEST(PreparedStatementsLifetime, ForgetByAnEqualDefinition) {
    ServerStatements server(4);
    std::vector<std::string> evicted;
    const std::string rest = "select 1\0\0\0"s;
    auto cached = StatementDef::from_parse_rest(rest);
    auto equal = StatementDef::from_parse_rest(rest);
    ASSERT_TRUE(cached && equal);
    const std::string name = server.insert(std::move(*cached), evicted).name;  // the cache owns it alone
    ASSERT_NE(server.find(**equal), nullptr);
    server.forget(**equal, name);
    EXPECT_EQ(server.size(), 0u);
    EXPECT_EQ(server.find(**equal), nullptr);
    EXPECT_TRUE(server.pending_closes().empty());
}

const std::filesystem::path kRewriterCorpus =
    std::filesystem::path(POOLGUARD_SOURCE_DIR) / "tests/fuzz/corpus/rewriter";

void replay(const std::filesystem::path& file) {
    std::ifstream in(file, std::ios::binary);
    ASSERT_TRUE(in) << file;
    const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    fuzz::drive_rewriter(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
}

// The fuzz input of the first test: capacity 1; Parse s1 "select x" <- '1'; Parse s2 "select y" <- '3' '1';
// Parse s3 "select x" <- '3' '1'; Close s3; Parse s1 "select two" <- '1' (the probe succeeds).
TEST(PreparedStatementsLifetime, RewriterFuzzCrashProbeForget) {
    replay(kRewriterCorpus / "uaf_probe_forget");
}

// Every committed input of the rewriter target, seeds and former crashes alike.
TEST(PreparedStatementsLifetime, RewriterFuzzCorpusReplays) {
    size_t n = 0;
    for (const auto& entry : std::filesystem::directory_iterator(kRewriterCorpus)) {
        SCOPED_TRACE(entry.path().filename().string());
        replay(entry.path());
        ++n;
    }
    EXPECT_GE(n, 4u);
}

}  // namespace
}  // namespace poolguard::protocol::pg
