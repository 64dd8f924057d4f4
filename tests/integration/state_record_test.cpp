// state.json under --root is input like any other (anyone with write access to the root can edit
// it): a corrupt record is an error naming the file, never undefined behaviour (tests/fuzz).
#include "harness.hpp"

using namespace bh_test;

namespace {

class StateRecordTest : public BulkheadTest {};

TEST_F(StateRecordTest, FloatPidInTheRecordIsReportedAsCorrupt) {
  std::string bundle = make_bundle({"sleep", "100"});
  pid_t pid = create(bundle, "rec");
  ASSERT_GT(pid, 0);
  std::string file = state_dir("rec") + "/state.json";
  json rec = json::parse(read_file(file));
  ASSERT_EQ(rec["pid"], pid);
  rec["pid"] = 1e30;
  ASSERT_TRUE(write_file(file, rec.dump(), 0600));
  auto r = bh({"state", "rec"});
  EXPECT_NE(r.exit_code, 0) << r;
  EXPECT_TRUE(contains(r.err, file + ": corrupt state: pid must be an integer of 32 bits, not 1e+30")) << r;
  rec["pid"] = pid; // delete needs the real record back to reach init
  ASSERT_TRUE(write_file(file, rec.dump(), 0600));
  EXPECT_TRUE(bh({"delete", "--force", "rec"}).ok());
}

} // namespace
