"""The shipped scenario files, installed as package data of `qin_env.scenarios`; `qin_env.params` loads them."""
