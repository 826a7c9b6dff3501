// The source tree is formatted as .clang-format says: clang-format --dry-run
// -Werror over src/ apps/ tests/ bench/ fuzz/, failing with the list of files
// that differ. Skipped where clang-format is not installed (scripts/setup.sh
// installs it).
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <set>
#include <sstream>

#include "test_util.h"

namespace {

std::vector<std::string> sources(const std::string& root) {
  std::vector<std::string> files;
  for (const char* dir : {"src", "apps", "tests", "bench", "fuzz"}) {
    const auto top = std::filesystem::path(root) / dir;
    if (!std::filesystem::is_directory(top)) continue;
    for (const auto& f : std::filesystem::recursive_directory_iterator(top)) {
      const auto ext = f.path().extension();
      if (f.is_regular_file() && (ext == ".h" || ext == ".cpp" || ext == ".hpp" || ext == ".cc"))
        files.push_back(f.path().string());
    }
  }
  std::sort(files.begin(), files.end());
  return files;
}

// The files named by clang-format's "file:line:col: error: ..." lines.
std::set<std::string> files_with_errors(const std::string& output) {
  std::set<std::string> files;
  std::istringstream lines(output);
  for (std::string line; std::getline(lines, line);) {
    const auto at = line.find(": error:");
    if (at == std::string::npos) continue;
    const auto name = line.substr(0, at);
    files.insert(name.substr(0, name.find(':')));
  }
  return files;
}

}  // namespace

TEST(Format, SourcesMatchClangFormat) {
  if (std::system("command -v clang-format >/dev/null 2>&1") != 0)
    GTEST_SKIP() << "clang-format is not installed";
  const auto files = sources(TAME_SOURCE_DIR);
  ASSERT_FALSE(files.empty());
  tame::testing::TempDir tmp;
  std::string cmd = "cd '" + std::string(TAME_SOURCE_DIR) + "' && clang-format --dry-run -Werror";
  for (const auto& f : files) cmd += " '" + f + "'";
  cmd += " 2>'" + (tmp / "err.txt") + "'";
  const int status = std::system(cmd.c_str());
  const auto output = tame::read_file(tmp / "err.txt");
  std::string differ;
  for (const auto& f : files_with_errors(output))
    differ += "\n  " + std::filesystem::relative(f, TAME_SOURCE_DIR).string();
  EXPECT_EQ(status, 0) << "files that differ from clang-format (run clang-format -i on them):"
                       << differ;
}
