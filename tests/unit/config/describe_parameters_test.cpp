// Unit tests of describe_parameters (what SHOW CONFIG lists): secrets are shown as set, never as themselves.
#include <gtest/gtest.h>

#include "config/config.h"

namespace poolguard::config {
namespace {

std::string shown(const Config& c, const std::string& key) {
    for (const auto& d : describe_parameters(c))
        if (d.key == key) return d.value;
    ADD_FAILURE() << key << " is not listed";
    return {};
}

TEST(DescribeParameters, SecretsAreMaskedAndOtherValuesShown) {
    auto loaded = parse_config(
        "[pgbouncer]\nauth_type = trust\n[poolguard]\nhttp_listen = 127.0.0.1:9127\n"
        "http_api_token = s3cret-token\ncontrol_user = postgres\ncontrol_password = hunter2\n",
        "pg.ini");
    ASSERT_TRUE(loaded) << loaded.error().message;
    const Config& c = loaded->config;
    EXPECT_EQ(c.http_api_token, "s3cret-token");
    EXPECT_EQ(shown(c, "http_api_token"), "********");
    EXPECT_EQ(shown(c, "control_password"), "********");
    EXPECT_EQ(shown(c, "control_user"), "postgres");
    EXPECT_EQ(shown(c, "http_listen"), "127.0.0.1:9127");
    for (const auto& d : describe_parameters(c)) {
        EXPECT_EQ(d.value.find("s3cret"), std::string::npos) << d.key;
        EXPECT_EQ(d.value.find("hunter2"), std::string::npos) << d.key;
        if (d.key == "http_api_token") {
            EXPECT_FALSE(d.changeable) << "read once by the control plane at start";
        }
    }
    Config unset;
    EXPECT_EQ(shown(unset, "http_api_token"), "") << "an unset secret shows as unset";
}

}  // namespace
}  // namespace poolguard::config
