// Precompiled header: <torch/torch.h> dominates compile time, so every target
// compiles it once through this file.
#pragma once
#include <torch/torch.h>

#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>
