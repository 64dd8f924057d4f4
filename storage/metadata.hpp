// template.json: a TemplateInfo as JSON, written so a crash leaves the old file or the new one.
#pragma once

#include <string>

#include "bulkhead/result.hpp"
#include "storage/template_store.hpp"

namespace bulkhead::storage {

std::string info_to_json(const TemplateInfo &info);
Result<TemplateInfo> info_from_json(const std::string &text, const std::string &what);

// temp file + fsync + rename + fsync of the directory, all relative to dirfd.
Status write_durable_at(int dirfd, const std::string &name, const std::string &data, const std::string &what);

} // namespace bulkhead::storage
