"""Policies: the YAML checker (`schema`), the policy file (`file`), programs
built and verified from it (`build`), and what each switch should hold
(`desired`), which the controller reconciles switches with."""
