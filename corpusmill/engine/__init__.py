"""The Beam engine: the generic filter step, one run's accounting (stats, dropped, failed, completion),
running a stage's pipeline, keyed dedup transforms. Stages build on it; filters know nothing of it."""


def _cache_dofn_specs() -> None:
    """Beam checks every DoFn for state and timer specs by taking the signature of each of its ~30 methods
    (``userstate.get_dofn_specs``), again at each construction, translation and bundle: about 15,000
    ``inspect.signature`` calls for one CCNet pipeline, 0.3 of its 1.2 CPU-s of start-up. The answer
    depends only on the DoFn's class (and, for a Map/FlatMap, on its function), so it is kept per class:
    for Beam's own DoFns and corpusmill's, whose specs are fixed; any other DoFn is checked as Beam does."""
    from apache_beam.transforms import userstate

    if getattr(userstate.get_dofn_specs, "_corpusmill", False):
        return
    original = userstate.get_dofn_specs
    cache: dict = {}

    def get_dofn_specs(dofn):
        cls = type(dofn)
        if not cls.__module__.startswith(("apache_beam.", "corpusmill.")):
            return original(dofn)
        fn = getattr(dofn, "_fn", None)
        code = getattr(fn, "__code__", None)  # a function: its code and defaults (unpickled copies agree)
        key = (
            cls,
            (
                code,
                getattr(fn, "__defaults__", None),
                getattr(fn, "__kwdefaults__", None) and tuple(sorted(fn.__kwdefaults__.items())),
            )
            if code is not None
            else fn,
        )
        try:
            found = cache.get(key)
        except TypeError:  # an unhashable function object
            return original(dofn)
        if found is None:
            found = cache[key] = original(dofn)
        return found

    get_dofn_specs._corpusmill = True
    userstate.get_dofn_specs = get_dofn_specs


def _cache_option_views() -> None:
    """``PipelineOptions.view_as(cls)`` builds an argparse parser for ``cls`` and parses the flags again on
    every call, and Beam calls it twice per transform applied (about 330 times for one CCNet pipeline,
    a quarter of its start-up). A view holds no state of its own (every view of one options object shares
    its values), so one view per options object and class is kept and given again."""
    import weakref

    from apache_beam.options.pipeline_options import PipelineOptions

    if getattr(PipelineOptions.view_as, "_corpusmill", False):
        return
    original = PipelineOptions.view_as
    views: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()

    def view_as(self, cls):
        try:
            mine = views.setdefault(self, {})
        except TypeError:  # not weak-referenceable
            return original(self, cls)
        view = mine.get(cls)
        if view is None or view._flags is not self._flags or view._all_options is not self._all_options:
            view = mine[cls] = original(self, cls)
        return view

    view_as._corpusmill = True
    PipelineOptions.view_as = view_as


_cache_dofn_specs()
_cache_option_views()
