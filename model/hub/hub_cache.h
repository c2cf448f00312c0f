#pragma once
// The Hugging Face cache layout (as huggingface_hub writes it), so that files a
// user already downloaded are reused and what qsweep downloads is reused by
// transformers, vLLM and huggingface-cli:
//
//   <hub_cache>/models--ORG--NAME/          (datasets--ORG--NAME for datasets)
//     blobs/<etag>                          file content; etag = the LFS sha256,
//                                           or the git blob sha1 for small files
//     blobs/<etag>.incomplete               a transfer in progress (resumed with Range)
//     snapshots/<commit>/<path>             relative symlink -> ../../blobs/<etag>
//                                           (one more ../ per sub-folder of <path>)
//     refs/<revision>                       the commit sha the revision resolved to
//                                           (no newline; not written when the
//                                           revision is itself the commit)

#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "model/hub/hub_source.h"

namespace qsweep::model {

/// "models--org--name" / "datasets--org--name".
std::string repo_folder_name(RepoType type, const std::string& repo_id);

class HubCacheRepo {
 public:
  HubCacheRepo(const std::filesystem::path& hub_cache, RepoType type, const std::string& repo_id);

  const std::filesystem::path& dir() const { return dir_; }
  std::filesystem::path blob_path(const std::string& etag) const { return dir_ / "blobs" / etag; }
  std::filesystem::path snapshot_dir(const std::string& sha) const {
    return dir_ / "snapshots" / sha;
  }

  /// The commit a revision resolved to when last seen online: refs/<rev>, or
  /// the revision itself when it is a commit with a snapshot folder; "" when unknown.
  std::string read_ref(const std::string& revision) const;
  /// Writes refs/<rev> atomically (nothing when rev == sha or already equal).
  bool write_ref(const std::string& revision, const std::string& sha, std::string* err) const;

  /// The regular file behind snapshots/<sha>/<rel> (resolving its symlink, which
  /// must stay inside this repo's folder); empty when absent or unsafe.
  std::filesystem::path cached_file(const std::string& sha, const std::string& rel) const;
  /// Points snapshots/<sha>/<rel> at blobs/<etag> with a relative symlink.
  bool link_snapshot(const std::string& sha, const std::string& rel, const std::string& etag,
                     std::string* err) const;
  /// Repo-relative paths of the files of snapshots/<sha>, sorted ('/'-separated).
  std::vector<std::string> list_snapshot(const std::string& sha) const;

 private:
  std::filesystem::path dir_;
};

/// Lowercase hex SHA-256 of a file's content; false + *err naming the file.
/// should_abort (may be empty) is polled between chunks.
bool sha256_file(const std::filesystem::path& p, std::string* hex, std::string* err,
                 const std::function<bool()>& should_abort = {});

/// git's blob id of a file: sha1 of "blob <size>\0" + content (the Hub's
/// blobId of a file not in LFS); false + *err naming the file.
bool git_blob_id_file(const std::filesystem::path& p, std::string* hex, std::string* err);

/// Hard-links src to dst, or copies when linking is impossible (other
/// filesystem); dst is a regular file afterwards. Parents of dst are created.
bool link_or_copy(const std::filesystem::path& src, const std::filesystem::path& dst,
                  std::string* err);

}  // namespace qsweep::model
