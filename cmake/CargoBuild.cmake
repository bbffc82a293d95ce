# cmake -P script run at build time by the top-level CMakeLists.txt:
# 1. cargo builds data-pipeline-ffi in release (cdylib + staticlib) and prints the native libraries a
#    static link needs (`--print native-static-libs`; cargo replays the note when nothing was rebuilt);
# 2. the artifacts are staged under STAGE/lib in the install layout (versioned .so + SONAME symlinks);
# 3. DataPipelineNativeLibs.cmake and the pkg-config files are written with those native libraries.
# Inputs: CARGO SOURCE_DIR TARGET_DIR STAGE DP_VERSION DP_SOVERSION DP_PC_RELATIVE_PREFIX DP_LIBDIR
#         DP_INCLUDEDIR.
cmake_minimum_required(VERSION 3.16)

execute_process(
  COMMAND "${CMAKE_COMMAND}" -E env "CARGO_TARGET_DIR=${TARGET_DIR}"
          "${CARGO}" rustc --locked -p data-pipeline-ffi --release --lib -- --print native-static-libs
  WORKING_DIRECTORY "${SOURCE_DIR}"
  RESULT_VARIABLE rc
  ERROR_VARIABLE cargo_err)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "cargo failed (${rc}):\n${cargo_err}")
endif()
if(NOT cargo_err MATCHES "native-static-libs: ([^\n]*)")
  message(FATAL_ERROR "cargo did not report native-static-libs:\n${cargo_err}")
endif()
string(STRIP "${CMAKE_MATCH_1}" native_flags)           # -lgcc_s -lutil -lrt ...
separate_arguments(native_list UNIX_COMMAND "${native_flags}")
set(native_names "")
foreach(flag IN LISTS native_list)
  string(REGEX REPLACE "^-l" "" name "${flag}")
  list(APPEND native_names "${name}")
endforeach()

set(release "${TARGET_DIR}/release")
set(lib "${STAGE}/lib")
file(MAKE_DIRECTORY "${lib}")
set(real "libdata_pipeline.so.${DP_VERSION}")
execute_process(COMMAND "${CMAKE_COMMAND}" -E copy_if_different
                "${release}/libdata_pipeline.so" "${lib}/${real}")
execute_process(COMMAND "${CMAKE_COMMAND}" -E copy_if_different
                "${release}/libdata_pipeline.a" "${lib}/libdata_pipeline.a")
file(CREATE_LINK "${real}" "${lib}/libdata_pipeline.so.${DP_SOVERSION}" SYMBOLIC)
file(CREATE_LINK "libdata_pipeline.so.${DP_SOVERSION}" "${lib}/libdata_pipeline.so" SYMBOLIC)

# configure_file only rewrites a file whose content changed.
set(DP_NATIVE_STATIC_LIBS "${native_flags}")
set(DP_NATIVE_STATIC_NAMES "${native_names}")
file(WRITE "${STAGE}/DataPipelineNativeLibs.cmake.in"
  "# Generated from `cargo rustc -- --print native-static-libs`: what linking libdata_pipeline.a needs.\n"
  "set(DataPipeline_NATIVE_STATIC_LIBS \"@DP_NATIVE_STATIC_NAMES@\")\n")
configure_file("${STAGE}/DataPipelineNativeLibs.cmake.in" "${STAGE}/DataPipelineNativeLibs.cmake" @ONLY)
configure_file("${SOURCE_DIR}/cmake/data-pipeline.pc.in" "${STAGE}/data-pipeline.pc" @ONLY)
configure_file("${SOURCE_DIR}/cmake/data-pipeline-static.pc.in" "${STAGE}/data-pipeline-static.pc" @ONLY)
