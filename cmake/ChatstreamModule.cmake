# chatstream_add_module(NAME SOURCES ... DEPENDS ...)
# One static library per module: PUBLIC include/, PRIVATE <module>/, and PUBLIC
# links only to the modules below it, so the link line enforces the layering.
function(chatstream_add_module name)
  cmake_parse_arguments(ARG "" "" "SOURCES;DEPENDS;PRIVATE_DEPENDS" ${ARGN})
  add_library(chatstream_${name} STATIC ${ARG_SOURCES})
  add_library(chatstream::${name} ALIAS chatstream_${name})
  target_include_directories(chatstream_${name}
    PUBLIC  ${PROJECT_SOURCE_DIR}/include
    PRIVATE ${CMAKE_CURRENT_SOURCE_DIR})
  target_link_libraries(chatstream_${name}
    PUBLIC chatstream_options ${ARG_DEPENDS}
    PRIVATE ${ARG_PRIVATE_DEPENDS})
endfunction()
