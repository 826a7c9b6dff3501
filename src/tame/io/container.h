// The self-checking container of tame's files that hold tensors (checkpoints,
// the FID classifier):
//
//   magic (8 bytes) | u32 version | u32 meta_len | meta JSON | u64 payload_len | payload | u32
//   crc32
//
// all integers little-endian, the CRC-32 over every byte before it; the
// payload is the caller's (a LibTorch archive).
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

namespace tame {

struct Container {
  uint32_t version = 0;
  nlohmann::json meta;
  std::string payload;
};

/// Writes a container atomically (write_file_atomic).
void write_container(const std::string& path, const char (&magic)[8], uint32_t version,
                     const nlohmann::json& meta, const std::string& payload);

/// Reads and checks one: magic, a version in [min_version, max_version],
/// lengths, checksum and metadata. Every failure is an Error naming the path
/// and `what` the file is ("checkpoint").
Container read_container(const std::string& path, const char (&magic)[8], const std::string& what,
                         uint32_t min_version, uint32_t max_version);

/// A module's parameters and buffers in an archive as "model.<name>" (what a
/// checkpoint holds), and back: reading checks every tensor's presence and
/// shape before it copies, and an Error names `path`.
void write_weights(torch::serialize::OutputArchive& archive, const torch::nn::Module& module);
void read_weights(torch::serialize::InputArchive& archive, torch::nn::Module& module,
                  const std::string& path);

}  // namespace tame
