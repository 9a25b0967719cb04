# Fails when a pure library (flow, engine) references the environment, the file system or the
# system's tz database: `nm` on each static library, every symbol it defines or uses.
#
#   cmake -DNM=<nm> "-DLIBRARIES=<a.a>|<b.a>" -P no_host_access.cmake
if(NOT NM OR NOT LIBRARIES)
  message(FATAL_ERROR "usage: cmake -DNM=nm -DLIBRARIES=lib1.a|lib2.a -P no_host_access.cmake")
endif()
string(REPLACE "|" ";" LIBRARIES "${LIBRARIES}")

# C functions, by their exact name (with the glibc and fortify variants).
set(c_functions
    "getenv|secure_getenv|__secure_getenv"
    "stat|stat64|lstat|lstat64|fstat|fstat64|fstatat|fstatat64|statx"
    "__xstat|__xstat64|__lxstat|__lxstat64|__fxstat|__fxstat64|__fxstatat|__fxstatat64"
    "open|open64|__open_2|__open64_2|openat|openat64|fopen|fopen64|freopen|freopen64"
    "opendir|fdopendir|readdir|readdir64|readdir_r|scandir")
list(JOIN c_functions "|" c_functions)
# C++ names, anywhere in a demangled symbol.
set(cxx_names "std::filesystem::|std::__fs::filesystem::|std::basic_ifstream<|std::basic_ofstream<|std::basic_fstream<|std::basic_filebuf<|cctz::load_time_zone\\(")

set(found "")
foreach(lib IN LISTS LIBRARIES)
  if(NOT EXISTS "${lib}")
    message(FATAL_ERROR "no such library: ${lib}")
  endif()
  execute_process(COMMAND "${NM}" -C -A "${lib}" OUTPUT_VARIABLE out RESULT_VARIABLE rc
                  ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "${NM} failed on ${lib}: ${err}")
  endif()
  string(REPLACE ";" "\\;" out "${out}")
  string(REPLACE "\n" ";" lines "${out}")
  foreach(line IN LISTS lines)
    # "<archive>:<member>: <address> <type> <symbol>" (no address for undefined symbols)
    if(NOT line MATCHES "^([^:]+:[^:]+): *[0-9a-fA-F]* ([A-Za-z]) (.*)$")
      continue()
    endif()
    set(where "${CMAKE_MATCH_1}")
    set(symbol "${CMAKE_MATCH_3}")
    string(REGEX REPLACE "@.*$" "" plain "${symbol}")  # getenv@GLIBC_2.2.5
    if(plain MATCHES "^(${c_functions})$" OR symbol MATCHES "(${cxx_names})")
      list(APPEND found "${where}: ${symbol}")
    endif()
  endforeach()
endforeach()

if(found)
  list(REMOVE_DUPLICATES found)
  list(LENGTH found n)
  list(JOIN found "\n  " text)
  message(FATAL_ERROR "flow and engine must not touch the host (use the host module), but "
                      "${n} symbol(s) do:\n  ${text}")
endif()
list(LENGTH LIBRARIES n)
message(STATUS "ok: ${n} libraries reference no environment, file system or tz database")
