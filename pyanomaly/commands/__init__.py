"""The command-line commands, one module each: ``pyanomaly <command>`` and ``tools/<script>.py``
run the same ``main(argv, prog)``.

Each module has ``build_parser(prog)`` (every option, ``--help``), ``run(args)`` (calls one
function of the package) and ``main(argv=None, prog=None)`` (parse, run, report a known
failure as one ``error:`` line). Importing a command module imports neither torch nor the
rest of the package: ``pyanomaly benchmark`` must set OpenMP's wait policy before torch loads.
"""
