import cProfile, os, runpy, pstats
prof = cProfile.Profile()
prof.enable()
try:
    runpy.run_path(os.path.join(os.path.dirname(os.path.abspath(__file__)), "app.py"), run_name="__main__")
finally:
    prof.disable()
    prof.dump_stats(os.environ["PROF_OUT"])
