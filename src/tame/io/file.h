// Whole-file reads and atomic writes. Every file tame writes goes through
// write_file_atomic: a temporary file in the same folder, fsync, rename, so a
// crash or Ctrl-C never leaves a half-written output or destroys the old one.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace tame {

std::string read_file(const std::string& path);  // throws Error naming the path
void write_file_atomic(const std::string& path, const std::string& bytes);
bool file_exists(const std::string& path);
bool is_directory(const std::string& path);
void make_directories(const std::string& path);  // mkdir -p; throws Error
std::string join_path(const std::string& a, const std::string& b);

/// CRC-32 (zlib's polynomial) of a byte string.
uint32_t crc32_of(const std::string& bytes);
uint32_t crc32_of(const void* data, size_t size);

/// Little-endian integer helpers for binary containers.
void put_u32(std::string& out, uint32_t v);
void put_u64(std::string& out, uint64_t v);
uint32_t get_u32(const std::string& in, size_t pos);
uint64_t get_u64(const std::string& in, size_t pos);

}  // namespace tame
