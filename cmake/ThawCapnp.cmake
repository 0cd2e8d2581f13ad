# thaw_capnp_schema(<target> <file.capnp>...)
#
# Compiles Cap'n Proto schemas of the calling directory into an OBJECT
# library <target>. The generated code lands in the build tree under the
# schema's source-relative path (snapshot/snapshot.capnp.{h,c++}), so
# `#include "snapshot/snapshot.capnp.h"` works from the binary dir.
#
# Generated code is not ours to keep warning-free: it is built without
# thaw_warnings and included as a system header. Position-independent so
# that any library may take its objects ($<TARGET_OBJECTS:<target>>).
function(thaw_capnp_schema target)
  if(ARGC LESS 2)
    message(FATAL_ERROR "thaw_capnp_schema(${target}): no .capnp file given")
  endif()
  # capnp_generate_cpp reads these from the calling scope; a function scope
  # keeps them from leaking into the directory.
  set(CAPNPC_SRC_PREFIX ${CMAKE_SOURCE_DIR})
  set(CAPNPC_OUTPUT_DIR ${CMAKE_BINARY_DIR})
  capnp_generate_cpp(_thaw_capnp_sources _thaw_capnp_headers ${ARGN})
  add_library(${target} OBJECT ${_thaw_capnp_sources})
  target_include_directories(${target} SYSTEM PUBLIC ${CMAKE_BINARY_DIR})
  target_link_libraries(${target} PUBLIC CapnProto::capnp)
  set_target_properties(${target} PROPERTIES POSITION_INDEPENDENT_CODE ON)
endfunction()
