#include <gtest/gtest.h>
#include <torch/torch.h>

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  at::set_num_threads(1);  // deterministic numerics; the machine has few cores anyway
  return RUN_ALL_TESTS();
}
