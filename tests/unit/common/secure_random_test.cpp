// Owns the unit tests of secure_random(): batches of CSPRNG output handed out once, never shared with a
// forked child.
#include "common/secure_random.h"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstring>
#include <set>
#include <string>
#include <vector>

namespace poolguard {
namespace {

std::string draw(size_t n) {
    std::string s(n, '\0');
    EXPECT_TRUE(secure_random(std::span<uint8_t>(reinterpret_cast<uint8_t*>(s.data()), n)));
    return s;
}

TEST(SecureRandom, NoDrawRepeatsAcrossBatchBoundaries) {
    // 3,000 draws of 12 bytes span several 4 KB batches: any reuse of a batch's bytes would repeat a draw.
    std::set<std::string> seen;
    for (int i = 0; i < 3000; ++i)
        EXPECT_TRUE(seen.insert(draw(12)).second) << "draw " << i << " repeated";
}

TEST(SecureRandom, OddSizesAndLargeRequestsAreFilled) {
    EXPECT_TRUE(secure_random({}));
    for (size_t n : {1u, 3u, 4095u, 4096u, 4097u, 10000u}) {
        const std::string a = draw(n);
        // A fill of zeros (or of a constant) would show as very few distinct bytes.
        std::set<char> distinct(a.begin(), a.end());
        EXPECT_GE(distinct.size(), std::min<size_t>(n, 200) / 2) << "size " << n;
    }
}

TEST(SecureRandom, AForkedChildDoesNotRepeatItsParentsBytes) {
    draw(16);  // the parent's batch is filled and partly used
    int fds[2];
    ASSERT_EQ(pipe(fds), 0);
    const pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        const std::string child = draw(32);
        const ssize_t n = write(fds[1], child.data(), child.size());
        _exit(n == static_cast<ssize_t>(child.size()) ? 0 : 1);
    }
    close(fds[1]);
    const std::string parent = draw(32);
    std::string child(32, '\0');
    size_t got = 0;
    while (got < child.size()) {
        const ssize_t n = read(fds[0], child.data() + got, child.size() - got);
        if (n <= 0) break;
        got += static_cast<size_t>(n);
    }
    close(fds[0]);
    int status = 0;
    waitpid(pid, &status, 0);
    ASSERT_EQ(got, child.size());
    ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    EXPECT_NE(parent, child) << "the child handed out the same bytes as its parent";
}

}  // namespace
}  // namespace poolguard
