"""BPF programs: compile (`toolchain`), read (`elf`, `btf`), run in libokovm
(`vm`) or in the kernel as the reference (`kernel`), offline on packets and
pcaps (`offline`)."""
