# Fails when a file under common/<folder>/ includes "common/<other>/..." and
# <other> is not <folder> or one of its declared dependencies, direct or
# transitive (LAYERS: one "folder:dep;dep" line per folder, from
# common/CMakeLists.txt). Run by the build; writes STAMP when all is well.
file(STRINGS ${LAYERS} lines)
foreach(line ${lines})
  string(FIND "${line}" ":" colon)
  string(SUBSTRING "${line}" 0 ${colon} name)
  math(EXPR start "${colon} + 1")
  string(SUBSTRING "${line}" ${start} -1 deps)
  set(DEPS_${name} ${deps})
  list(APPEND folders ${name})
endforeach()

# The transitive closure, in declaration order (dependencies come first).
foreach(name ${folders})
  set(closure ${name})
  foreach(dep ${DEPS_${name}})
    list(APPEND closure ${CLOSURE_${dep}})
  endforeach()
  list(REMOVE_DUPLICATES closure)
  set(CLOSURE_${name} ${closure})
endforeach()

set(errors "")
foreach(name ${folders})
  file(GLOB files ${ROOT}/${name}/*.h ${ROOT}/${name}/*.cc)
  foreach(f ${files})
    file(STRINGS ${f} includes REGEX "^#include \"common/[a-z_]+/")
    foreach(inc ${includes})
      string(REGEX REPLACE "^#include \"common/([a-z_]+)/.*" "\\1" used "${inc}")
      list(FIND CLOSURE_${name} ${used} found)
      if(found EQUAL -1)
        file(RELATIVE_PATH rel ${ROOT}/.. ${f})
        string(APPEND errors "  ${rel} includes common/${used}/, but common/${name} may use only: "
                             "${CLOSURE_${name}}\n")
      endif()
    endforeach()
  endforeach()
endforeach()
# A folder with code that common/CMakeLists.txt does not build.
file(GLOB entries LIST_DIRECTORIES true ${ROOT}/*)
foreach(e ${entries})
  if(IS_DIRECTORY ${e})
    get_filename_component(n ${e} NAME)
    list(FIND folders ${n} found)
    if(found EQUAL -1)
      string(APPEND errors "  common/${n}/ is not declared in common/CMakeLists.txt\n")
    endif()
  endif()
endforeach()
if(errors)
  message(FATAL_ERROR "wrong-way includes between common/ folders (the arrows must point one way; "
                      "move the shared code down, or declare the dependency if it is right):\n"
                      "${errors}")
endif()
file(WRITE ${STAMP} "ok\n")
