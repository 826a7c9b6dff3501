// The mixed-precision scope of `tame train --precision bf16`: what it switches
// on, what it leaves exact, and that it always restores the thread's state.
#include <ATen/autocast_mode.h>
#include <gtest/gtest.h>

#include "tame/error.h"
#include "tame/nn/autocast.h"

using namespace tame;

TEST(Autocast, ScopeSwitchesOnNestsAndRestores) {
  const torch::Device cpu(torch::kCPU);
  auto a = torch::randn({4, 8}), b = torch::randn({8, 3});
  EXPECT_FALSE(at::autocast::is_cpu_enabled());
  EXPECT_EQ(torch::matmul(a, b).scalar_type(), torch::kFloat);
  {
    AutocastScope bf16(torch::kBFloat16, cpu);
    EXPECT_TRUE(at::autocast::is_cpu_enabled());
    EXPECT_EQ(torch::matmul(a, b).scalar_type(), torch::kBFloat16);
    {
      AutocastScope exact(torch::kFloat, cpu);  // an exact region inside a bf16 step
      EXPECT_FALSE(at::autocast::is_cpu_enabled());
      EXPECT_EQ(torch::matmul(a, b).scalar_type(), torch::kFloat);
    }
    EXPECT_TRUE(at::autocast::is_cpu_enabled());
    {
      AutocastScope inner(torch::kBFloat16, cpu);
      EXPECT_EQ(torch::matmul(a, b).scalar_type(), torch::kBFloat16);
    }
    EXPECT_TRUE(at::autocast::is_cpu_enabled()) << "an inner scope switched the outer one off";
  }
  EXPECT_FALSE(at::autocast::is_cpu_enabled());
  EXPECT_EQ(torch::matmul(a, b).scalar_type(), torch::kFloat);
  {
    AutocastScope fp32(torch::kFloat, cpu);  // nothing to change
    EXPECT_FALSE(at::autocast::is_cpu_enabled());
  }
  EXPECT_FALSE(at::autocast::is_cpu_enabled());
}

TEST(Autocast, ScopeEndsCleanlyWhenItsBodyThrows) {
  try {
    AutocastScope bf16(torch::kBFloat16, torch::Device(torch::kCPU));
    throw Error("inside");
  } catch (const Error&) {
  }
  EXPECT_FALSE(at::autocast::is_cpu_enabled());
}

TEST(Autocast, FullPrecisionRaisesOnlyLowerFloats) {
  EXPECT_EQ(full_precision(torch::ones({2}, torch::kBFloat16)).scalar_type(), torch::kFloat);
  EXPECT_EQ(full_precision(torch::ones({2}, torch::kHalf)).scalar_type(), torch::kFloat);
  EXPECT_EQ(full_precision(torch::ones({2}, torch::kDouble)).scalar_type(), torch::kDouble);
  EXPECT_EQ(full_precision(torch::ones({2}, torch::kUInt8)).scalar_type(), torch::kUInt8);
  auto f = torch::ones({2});
  EXPECT_TRUE(full_precision(f).is_same(f));  // fp32 passes through, no copy
}

TEST(Autocast, PrecisionNames) {
  EXPECT_EQ(parse_precision("fp32"), torch::kFloat);
  EXPECT_EQ(parse_precision("bf16"), torch::kBFloat16);
  EXPECT_STREQ(precision_name(torch::kBFloat16), "bf16");
  EXPECT_STREQ(precision_name(torch::kFloat), "fp32");
  EXPECT_THROW(parse_precision("fp16"), Error);
}
