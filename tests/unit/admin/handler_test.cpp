#include <gtest/gtest.h>

#include "journeyd/admin/server.h"

namespace journeyd::admin {
namespace {

TEST(AdminHandler, HealthzIsAlwaysOk) {
  auto r = HandleAdminRequest("GET", "/healthz", {});
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "ok\n");
}

TEST(AdminHandler, ReadyzNamesWhatIsMissing) {
  EXPECT_EQ(HandleAdminRequest("GET", "/readyz", {.redis_ok = false}).status, 503);
  EXPECT_NE(HandleAdminRequest("GET", "/readyz", {.redis_ok = false}).body.find("Redis"),
            std::string::npos);
  auto no_partition = HandleAdminRequest("GET", "/readyz", {.redis_ok = true});
  EXPECT_EQ(no_partition.status, 503);
  EXPECT_NE(no_partition.body.find("partition"), std::string::npos);
  auto ready = HandleAdminRequest("GET", "/readyz?verbose=1",
                                  {.redis_ok = true, .partitions_owned = 2, .partitions = 4});
  EXPECT_EQ(ready.status, 200);
  EXPECT_EQ(ready.body, "ready: 2 of 4 partitions owned\n");
}

TEST(AdminHandler, UnknownPathsAndMethods) {
  EXPECT_EQ(HandleAdminRequest("GET", "/nope", {}).status, 404);
  EXPECT_EQ(HandleAdminRequest("POST", "/healthz", {}).status, 405);
  auto index = HandleAdminRequest("GET", "/", {});
  EXPECT_EQ(index.status, 200);
  EXPECT_NE(index.body.find("/readyz"), std::string::npos);
}

}  // namespace
}  // namespace journeyd::admin
