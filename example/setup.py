from setuptools import find_namespace_packages, setup

setup(
    name='immortus_example',
    version='0.1.0',
    description='The example application of pyramid_immortus',
    packages=find_namespace_packages(include=['immortus_example', 'immortus_example.*']),
    include_package_data=True,
    package_data={'immortus_example': ['templates/*.html']},
    zip_safe=False,
    install_requires=['pyramid_immortus', 'waitress'],
    entry_points={
        'paste.app_factory': ['main = immortus_example:main'],
    },
)
