# sisy_unit_test(NAME SOURCES src... LIBS lib... [LABELS l...] [TIMEOUT s])
# Builds a cmocka test executable into bin/ and registers it with ctest.
# Labels: unit (default), sim, cluster, fuzz, valgrind, crash.
function(sisy_unit_test name)
  cmake_parse_arguments(T "" "TIMEOUT" "SOURCES;LIBS;LABELS;ARGS" ${ARGN})
  if(NOT T_LABELS)
    set(T_LABELS unit)
  endif()
  if(NOT T_TIMEOUT)
    set(T_TIMEOUT 300)
  endif()
  add_executable(${name} ${T_SOURCES})
  target_link_libraries(${name} PRIVATE ${T_LIBS} cmocka_lib)
  target_include_directories(${name} PRIVATE ${PROJECT_SOURCE_DIR}/tests/unit)
  add_test(NAME ${name} COMMAND ${name} ${T_ARGS})
  set_tests_properties(${name} PROPERTIES LABELS "${T_LABELS}" TIMEOUT ${T_TIMEOUT})
endfunction()

# sisy_script_test(NAME COMMAND cmd... [LABELS l...] [TIMEOUT s])
# Registers a shell/python test; BUILD_BIN in its environment points at <build>/bin.
function(sisy_script_test name)
  cmake_parse_arguments(T "" "TIMEOUT" "COMMAND;LABELS" ${ARGN})
  if(NOT T_TIMEOUT)
    set(T_TIMEOUT 600)
  endif()
  add_test(NAME ${name} COMMAND ${T_COMMAND})
  set_tests_properties(${name} PROPERTIES LABELS "${T_LABELS}" TIMEOUT ${T_TIMEOUT}
    ENVIRONMENT "BUILD_BIN=${CMAKE_BINARY_DIR}/bin;SRC_DIR=${PROJECT_SOURCE_DIR}")
endfunction()
