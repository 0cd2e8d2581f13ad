# Post-build check for guest images: disassembles the code sections and fails
# (removing the image, so a rebuild cannot pick it up) if it finds an
# instruction that ends the run in PVM's ring-0 emulator, or any SSE/AVX
# register use. Ring-3 code is built with the same flags, so it is checked too.
#
#   cmake -DOBJDUMP=objdump -DELF=x.elf -DSECTIONS64=.text,.isr
#         -DSECTIONS32=.text32 -P check_guest_code.cmake

set(forbidden_mnemonics
    popcnt xsave xsaveopt xsavec xsaves xrstor xrstors fxsave fxrstor
    int3 clac stac rdrand rdseed ldmxcsr stmxcsr vzeroupper endbr64 endbr32)

function(disassemble mode sections out_var)
  set(args -d --no-show-raw-insn)
  if(mode STREQUAL "i386")
    list(APPEND args -M i386)
  endif()
  string(REPLACE "," ";" section_list "${sections}")
  foreach(section IN LISTS section_list)
    list(APPEND args -j ${section})
  endforeach()
  execute_process(COMMAND ${OBJDUMP} ${args} ${ELF}
                  OUTPUT_VARIABLE text ERROR_VARIABLE errors RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0 OR NOT errors STREQUAL "")
    file(REMOVE ${ELF})
    message(FATAL_ERROR "objdump failed on ${ELF} (${sections}): ${errors}")
  endif()
  set(${out_var} "${text}" PARENT_SCOPE)
endfunction()

set(listing "")
if(SECTIONS64)
  disassemble(x86-64 "${SECTIONS64}" text64)
  string(APPEND listing "${text64}")
endif()
if(SECTIONS32)
  disassemble(i386 "${SECTIONS32}" text32)
  string(APPEND listing "${text32}")
endif()

string(REPLACE ";" "|" alternatives "${forbidden_mnemonics}")
# objdump lines look like "  100010:\tpopcnt %rax,%rax"; a space before each
# newline lets a mnemonic that ends its line match as a whole word.
string(REPLACE "\n" " \n" listing "${listing}")
string(REGEX MATCHALL "[^\n]*\t(${alternatives}) [^\n]*|[^\n]*%[xyz]mm[0-9][^\n]*|[^\n]*\\(bad\\)[^\n]*"
       offending "${listing}")
if(offending)
  file(REMOVE ${ELF})
  string(REPLACE ";" "\n" lines "${offending}")
  message(FATAL_ERROR "${ELF}: instructions the PVM ring-0 emulator cannot run:\n${lines}")
endif()
