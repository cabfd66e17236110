"""The names of the routes this add-on adds (``config.include``)."""

VERIFY_ROUTE = 'immortus.verify'
VERIFY_CLASS_ROUTE = 'immortus.verify_class'
VERIFY_BATCH_ROUTE = 'immortus.verify_batch'
CANCEL_ROUTE = 'immortus.cancel'
