// Left-aligned text columns sized to their widest cell, for clusterctl's reports.
// Widths count bytes: cells are expected to be ASCII. Not thread-safe to share
// while adding rows.
#ifndef CLUSTER_BALANCE_SIDECAR_CLUSTERCTL_TEXT_TABLE_H_
#define CLUSTER_BALANCE_SIDECAR_CLUSTERCTL_TEXT_TABLE_H_

#include <ostream>
#include <string>
#include <vector>

namespace cb {

class TextTable {
 public:
  explicit TextTable(std::vector<std::string> header) { rows_.push_back(std::move(header)); }
  void Add(std::vector<std::string> row) { rows_.push_back(std::move(row)); }

  // The header and the rows, two spaces between columns, no trailing blanks.
  void Print(std::ostream& out, const std::string& indent = "") const;

 private:
  std::vector<std::vector<std::string>> rows_;
};

}  // namespace cb

#endif  // CLUSTER_BALANCE_SIDECAR_CLUSTERCTL_TEXT_TABLE_H_
