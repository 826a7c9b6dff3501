// Precompiled header: <torch/torch.h> dominates compile time, so every target
// compiles it once through this file.
#pragma once
#include <torch/torch.h>
#include <nlohmann/json.hpp>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>
