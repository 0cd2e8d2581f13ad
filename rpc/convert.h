// pool/pool_types.h structs to and from their Cap'n Proto mirrors in
// rpc/thaw.capnp. Field for field; no checks here (rpc/validation.h).
#pragma once

#include <string>

#include "pool/pool_types.h"
#include "rpc/thaw.capnp.h"

namespace thaw::rpc {

std::string to_string(capnp::Text::Reader text);

pool::PoolPolicy from_schema(schema::PoolPolicy::Reader in);
pool::LatencySummary from_schema(schema::LatencySummary::Reader in);
pool::TemplateSpec from_schema(schema::TemplateSpec::Reader in);
pool::TemplateInfo from_schema(schema::TemplateInfo::Reader in);
pool::LatencyHistogram from_schema(schema::LatencyHistogram::Reader in);
pool::PoolStats::PerTemplate from_schema(schema::TemplateStats::Reader in);
pool::PoolStats from_schema(schema::PoolStats::Reader in);

void to_schema(const pool::PoolPolicy& in, schema::PoolPolicy::Builder out);
void to_schema(const pool::LatencySummary& in, schema::LatencySummary::Builder out);
void to_schema(const pool::TemplateSpec& in, schema::TemplateSpec::Builder out);
void to_schema(const pool::TemplateInfo& in, schema::TemplateInfo::Builder out);
void to_schema(const pool::LatencyHistogram& in, schema::LatencyHistogram::Builder out);
void to_schema(const pool::PoolStats::PerTemplate& in, schema::TemplateStats::Builder out);
void to_schema(const pool::PoolStats& in, schema::PoolStats::Builder out);

}  // namespace thaw::rpc
