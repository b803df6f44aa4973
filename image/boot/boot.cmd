# U-Boot boot script for the Ponte A/B layout (mkimage -T script -d boot.cmd boot.scr).
# Same algorithm as firmware/update/state.py choose_boot(): the first slot in
# BOOT_ORDER with attempts left is booted and its count decremented; when none has
# any, BOOT_LAST_GOOD gets fresh attempts.  It never halts.
test -n "${BOOT_ORDER}" || setenv BOOT_ORDER "A"
test -n "${BOOT_A_LEFT}" || setenv BOOT_A_LEFT 3
test -n "${BOOT_B_LEFT}" || setenv BOOT_B_LEFT 0
test -n "${BOOT_LAST_GOOD}" || setenv BOOT_LAST_GOOD A
setenv ponte_slot
for s in ${BOOT_ORDER}; do
  if test -z "${ponte_slot}"; then
    if test "${s}" = "A" && test ${BOOT_A_LEFT} -gt 0; then
      setexpr BOOT_A_LEFT ${BOOT_A_LEFT} - 1; setenv ponte_slot A
    elif test "${s}" = "B" && test ${BOOT_B_LEFT} -gt 0; then
      setexpr BOOT_B_LEFT ${BOOT_B_LEFT} - 1; setenv ponte_slot B
    fi
  fi
done
if test -z "${ponte_slot}"; then
  echo "Ponte: no slot has attempts left, falling back to ${BOOT_LAST_GOOD}"
  setenv ponte_slot ${BOOT_LAST_GOOD}
  if test "${ponte_slot}" = "A"; then setenv BOOT_A_LEFT 2; else setenv BOOT_B_LEFT 2; fi
fi
saveenv
if test "${ponte_slot}" = "A"; then setenv ponte_part 2; else setenv ponte_part 3; fi
setenv bootargs "${bootargs} root=/dev/mmcblk0p${ponte_part} rootfstype=squashfs ro ponte.slot=${ponte_slot}"
load mmc 0:${ponte_part} ${kernel_addr_r} /boot/vmlinuz
load mmc 0:${ponte_part} ${fdt_addr_r} /boot/dtb
booti ${kernel_addr_r} - ${fdt_addr_r}
